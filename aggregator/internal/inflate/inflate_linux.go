//go:build linux && cgo

package inflate

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>
#include <stdlib.h>

// libdeflate's public ABI (libdeflate.h, stable within soname 0):
// enum libdeflate_result { SUCCESS = 0, BAD_DATA = 1, SHORT_OUTPUT = 2,
// INSUFFICIENT_SPACE = 3 }.
typedef void *(*alloc_fn)(void);
typedef void (*free_fn)(void *);
typedef int (*gunzip_fn)(void *d, const void *in, size_t in_nbytes,
	void *out, size_t out_nbytes_avail,
	size_t *actual_in_nbytes_ret, size_t *actual_out_nbytes_ret);

static alloc_fn p_alloc;
static free_fn p_free;
static gunzip_fn p_gunzip;

// ps_load opens the library once; 0 on success, else -1 and *err set to
// dlerror's text (owned by libc, copied by the caller at once).
static int ps_load(const char **err) {
	void *h = dlopen("libdeflate.so.0", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		*err = dlerror();
		return -1;
	}
	p_alloc = (alloc_fn)dlsym(h, "libdeflate_alloc_decompressor");
	p_free = (free_fn)dlsym(h, "libdeflate_free_decompressor");
	p_gunzip = (gunzip_fn)dlsym(h, "libdeflate_gzip_decompress_ex");
	if (p_alloc == NULL || p_free == NULL || p_gunzip == NULL) {
		*err = "libdeflate.so.0 lacks libdeflate_gzip_decompress_ex (libdeflate older than 1.0?)";
		return -1;
	}
	return 0;
}

static void *ps_alloc(void) { return p_alloc(); }
static void ps_free(void *d) { p_free(d); }

static int ps_gunzip(void *d, const void *in, size_t in_n, void *out, size_t out_n,
		size_t *in_used, size_t *out_used) {
	return p_gunzip(d, in, in_n, out, out_n, in_used, out_used);
}
*/
import "C"

import (
	"errors"
	"sync"
	"unsafe"
)

const (
	resultSuccess           = 0
	resultInsufficientSpace = 3
)

var load = sync.OnceValues(func() (bool, error) {
	var msg *C.char
	if C.ps_load(&msg) != 0 {
		return false, errors.New("dlopen libdeflate.so.0: " + C.GoString(msg))
	}
	return true, nil
})

func available() (bool, error) { return load() }

// decompressor is a libdeflate decompressor (C memory, ~32 KiB, not safe
// for concurrent use). Free ones wait in idle; beyond its size they are
// freed, so C memory stays bounded by the peak concurrency.
type decompressor struct{ p unsafe.Pointer }

var idle = make(chan *decompressor, 64)

func getDecompressor() *decompressor {
	select {
	case d := <-idle:
		return d
	default:
	}
	p := C.ps_alloc()
	if p == nil {
		return nil
	}
	return &decompressor{p: p}
}

func putDecompressor(d *decompressor) {
	select {
	case idle <- d:
	default:
		C.ps_free(d.p)
	}
}

func gunzip(dst, src []byte, limit int, grow func(int) bool) ([]byte, error) {
	if ok, _ := load(); !ok {
		return nil, ErrUnavailable
	}
	if len(src) == 0 {
		return nil, ErrBad
	}
	d := getDecompressor()
	if d == nil {
		return nil, ErrUnavailable
	}
	defer putDecompressor(d)
	out := dst[:0]
	// The last member's trailer holds its size mod 2^32 (ISIZE): for the
	// usual single-member body the exact size, and a good first guess for
	// several members. It is only a claim, so it is capped by the limit.
	// A truncated or hostile body makes it any number, so a guess beyond
	// a plausible ratio is not believed (the room doubles when short).
	guess := func(n int) int { return n*8 + 4<<10 }
	want := guess(len(src))
	if len(src) >= 18 {
		isize := int(uint32(src[len(src)-4]) | uint32(src[len(src)-3])<<8 | uint32(src[len(src)-2])<<16 | uint32(src[len(src)-1])<<24)
		if isize+len(src) <= 64*len(src)+64<<10 {
			want = isize + len(src)
		}
	}
	// room is the capacity granted so far: grow is asked for all of it,
	// dst's own capacity included (a pooled buffer is used only as far as
	// it was granted), and it never exceeds limit, so no output goes past
	// the limit even into a bigger dst.
	room := 0
	for len(src) > 0 {
		if c := min(len(out)+want, limit); c > room {
			if !grow(c) {
				return out[:0], ErrTooLarge
			}
			room = c
			if c > cap(out) {
				next := make([]byte, len(out), c)
				copy(next, out)
				out = next
			}
		} else if len(out) >= room {
			return out[:0], ErrTooLarge
		}
		var inUsed, outUsed C.size_t
		free := out[len(out):room]
		var outPtr unsafe.Pointer
		if len(free) > 0 {
			outPtr = unsafe.Pointer(&free[0])
		}
		// Go memory passed to C for the call only: allowed by the cgo
		// pointer rules (no Go pointers inside these byte slices).
		r := C.ps_gunzip(d.p, unsafe.Pointer(&src[0]), C.size_t(len(src)),
			outPtr, C.size_t(len(free)), &inUsed, &outUsed)
		switch r {
		case resultSuccess:
			if int(inUsed) <= 0 || int(inUsed) > len(src) || int(outUsed) > len(free) {
				return out[:0], ErrBad
			}
			out = out[:len(out)+int(outUsed)]
			src = src[int(inUsed):]
			want = guess(len(src))
		case resultInsufficientSpace:
			if room >= limit {
				return out[:0], ErrTooLarge
			}
			// Retry this member with all the room the limit allows: the
			// guess is right for nearly every body, so a second miss
			// would be rare, but doubling would leave a trail of buffers
			// for every body that is too large.
			want = limit - len(out)
		default:
			return out[:0], ErrBad
		}
	}
	return out, nil
}
