// Keeps memory that tensors free inside the process for the next tensors of the same size.
//
//   clipcap::keep_freed_tensor_memory();   // once, before the first big tensor (apply_runtime does it)
//
// glibc serves big allocations (>= 128 KiB at first, up to 32 MiB as its threshold adapts) with a
// fresh mmap and unmaps them on free, so every activation of a batched forward is new memory the
// kernel must fault in and zero, page by page, on first touch: a third of a ViT-B/32 forward's
// time on this project's machine (bench/README.md, "Measurements behind code decisions").
// Served from the heap and never trimmed, the next batch reuses the same pages. The cost: the
// process keeps its peak heap until it exits, which a batch tool reaches in its first batch anyway.
// Any MALLOC_*_ tuning variable in the environment wins (the user asked for something else), and
// allocators preloaded in glibc's place are not affected.
#pragma once

namespace clipcap {

void keep_freed_tensor_memory();

}  // namespace clipcap
