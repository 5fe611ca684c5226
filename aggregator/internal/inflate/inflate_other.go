//go:build !linux || !cgo

package inflate

func available() (bool, error) { return false, ErrUnavailable }

func gunzip(dst, src []byte, limit int, grow func(int) bool) ([]byte, error) {
	return nil, ErrUnavailable
}
