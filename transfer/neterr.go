package transfer

import (
	"errors"
	"net"
	"syscall"
)

// isNetError reports a dropped or reset connection or a timeout.
func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
