"""What the reports of bench/run_*_bench.sh share: the raw lines in, the closing lines and both
result files out. Imported by the Python each script runs through bench/common.sh's `report`."""
import json
import sys


def start():
    """What bench/common.sh's `report` passes: (rows, events, out, cmd, cpu, kernel)."""
    rows, events = read_raw(sys.argv[1])
    return (rows, events, *sys.argv[2:6])


def read_raw(path):
    """The raw JSON lines: (all rows, {event name: event row} of common.sh's `note`)."""
    rows = [json.loads(line) for line in open(path) if line.strip()]
    return rows, {r["event"]: r for r in rows if "event" in r}


def write_report(out, lines, cmd, cpu, kernel, events, **data):
    """Ends the table lines with the load, machine and command; writes OUT.md and OUT.json (the
    command, machine, events and each of data's lists), prints the markdown."""
    start, end = events.get("start", {}), events.get("end", {})
    lines = lines + ["", f"Load average (1/5/15 min) at start: {start.get('loadavg', '?')}, "
                     f"at end: {end.get('loadavg', '?')}; {start.get('time', '?')} to {end.get('time', '?')}.",
                     f"Machine: {cpu}, Linux {kernel}.", f"Command: `{cmd}`"]
    md = "\n".join(lines) + "\n"
    with open(out + ".md", "w") as f:
        f.write(md)
    with open(out + ".json", "w") as f:
        json.dump({"command": cmd, "machine": cpu, "kernel": kernel, "events": events, **data}, f, indent=1)
    print(md)
    print(f"written: {out}.md, {out}.json", file=sys.stderr)
