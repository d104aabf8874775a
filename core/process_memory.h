// This process's resident memory (RSS) as the kernel counts it: what tensors take plus the
// blocks the CPU allocator keeps, mapped files that were read, and the program itself.
#pragma once
#include <cstddef>

namespace forge {

size_t rss_bytes();       // now
size_t peak_rss_bytes();  // the high-water mark since start or the last reset
// Starts the high-water mark again from the current RSS (Linux /proc/self/clear_refs), so that a
// benchmark can show its steady state without the start-up's peak; false where it cannot.
bool reset_peak_rss();

}  // namespace forge
