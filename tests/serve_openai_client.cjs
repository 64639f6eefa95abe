// Talks to a running clipcap-serve with the official OpenAI client (the npm package `openai`, from
// scripts/fetch_openai_client.sh) and prints what it got as one JSON object:
//   node tests/serve_openai_client.cjs OPENAI_PACKAGE_DIR BASE_URL IMAGE.png
// The C++ test (tests/test_serve_cli.cpp) compares the captions with clipcap-infer's.
const fs = require('fs');
const [pkg, baseURL, image] = process.argv.slice(2);
const OpenAI = require(pkg).default || require(pkg);

async function main() {
  const client = new OpenAI({ baseURL, apiKey: 'sk-unused', maxRetries: 0, timeout: 60000 });
  const url = 'data:image/png;base64,' + fs.readFileSync(image).toString('base64');
  const request = {
    model: 'emoji-tiny',
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe the image.' },
                                         { type: 'image_url', image_url: { url } }] }],
  };
  const out = {};
  const greedy = await client.chat.completions.create({ ...request, temperature: 0 });
  out.greedy = greedy.choices[0].message.content;
  out.finish_reason = greedy.choices[0].finish_reason;
  out.total_tokens = greedy.usage.total_tokens;
  const sampled = await client.chat.completions.create({ ...request, temperature: 0.9, seed: 11, n: 2 });
  out.sampled = sampled.choices.map((c) => c.message.content);
  let streamed = '';
  const stream = await client.chat.completions.create({ ...request, temperature: 0, stream: true });
  for await (const chunk of stream) streamed += (chunk.choices[0] && chunk.choices[0].delta.content) || '';
  out.streamed = streamed;
  out.models = (await client.models.list()).data.map((m) => m.id);
  try {
    await client.chat.completions.create({ ...request, model: 'gpt-4o' });
  } catch (e) {
    out.error = { status: e.status, type: e.type, message: e.message };
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(`serve_openai_client: ${e.stack || e}`);
  process.exit(1);
});
