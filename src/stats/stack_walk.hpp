// Call stacks for leak samples: the frame-pointer chain where the program
// keeps one (a few loads per frame), else the unwinder (backtrace(), about
// 10k instructions a stack).
#pragma once

namespace bop::stats {

// Up to `max` return addresses of the calling thread, innermost first.
// Called with the sampler's guard set (the unwinder and the first look at a
// thread's stack bounds may allocate).
int capture_stack(void** frames, int max) noexcept;

}  // namespace bop::stats
