// Package inflate decompresses whole gzip bodies with libdeflate when the
// system has it, for the aggregator's ingest path.
//
// Decompression was a sixth of the aggregator's CPU per snapshot with
// klauspost/compress's streaming inflater; libdeflate is faster
// (BenchmarkGunzip, figures in docs/performance.md) because it inflates a
// whole buffer in one call instead of through a stream. No Go binding of
// libdeflate is published on the module proxy, so this package declares
// the three functions of its stable C ABI (soname libdeflate.so.0) itself
// and loads the library with dlopen at startup: building needs no headers
// and no extra package, and a host without the library (Debian's
// libdeflate0) still works, with the caller's streaming path.
//
// Gunzip is a fast path only: when it reports an error, the caller decodes
// the same bytes with its streaming reader, which finds the precise error
// (and, with a size limit, what came before it) exactly as before.
package inflate

import "errors"

var (
	// ErrUnavailable: libdeflate could not be loaded (see Available).
	ErrUnavailable = errors.New("libdeflate is not available")
	// ErrTooLarge: the decompressed body would exceed the limit.
	ErrTooLarge = errors.New("decompressed body exceeds the limit")
	// ErrBad: the input is not a valid gzip stream of one or more members.
	ErrBad = errors.New("invalid gzip data")
)

// Available reports whether Gunzip can work, and if not, why.
func Available() (bool, error) { return available() }

// Gunzip decompresses src, a gzip stream of one or more members (RFC 1952
// 2.2: they decompress as their concatenation), into dst[:0] grown as
// needed, and returns the result. It never produces more than limit bytes:
// past it, ErrTooLarge, and never writes past dst[limit-1] even when dst
// is bigger. grow is asked for every capacity before it is used (dst's
// own capacity too, so that a pooled buffer is accounted like a new one;
// a buffer is allocated only beyond cap(dst)) and may refuse it (false),
// which ends Gunzip with ErrTooLarge too; it lets the caller bound what all
// requests hold together. On error
// the returned slice is empty but may hold the buffer Gunzip grew, for the
// caller to reuse.
func Gunzip(dst, src []byte, limit int, grow func(capacity int) bool) ([]byte, error) {
	return gunzip(dst, src, limit, grow)
}
