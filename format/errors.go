package format

import (
	"errors"
	"fmt"
)

// ErrInvalid is the category of every validation and decoding error of this
// package: errors.Is(err, ErrInvalid) reports a malformed or non-canonical
// object (as opposed to an I/O failure of the caller).
var ErrInvalid = errors.New("invalid object")

// invalidError is an ErrInvalid whose text names the problem only.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// prefixed adds context to an ErrInvalid (or any) error.
func prefixed(err error, format string, args ...any) error {
	var ie *invalidError
	if errors.As(err, &ie) {
		return &invalidError{msg: fmt.Sprintf(format, args...) + ": " + ie.msg}
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
