package registry

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"github.com/oci2/oci2/store"
)

// Error categories of this backend besides store's, checked with
// errors.Is.
var (
	// ErrUnauthorized is a 401 or 403 answer: missing or wrong credentials,
	// or no access to the repository.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrRangeIgnored is a registry answering a range request with the whole
	// blob.
	ErrRangeIgnored = errors.New("registry ignores Range requests")
	// ErrRegistry is any other error answer (after retries for 5xx and 429).
	ErrRegistry = errors.New("registry error")
)

// HTTPError is an error answer of the registry.
type HTTPError struct {
	Host     string
	Method   string
	Path     string
	Status   int
	Codes    []string // distribution error codes (BLOB_UNKNOWN, ...)
	Message  string   // their messages, joined
	Attempts int
}

func (e *HTTPError) Error() string {
	s := fmt.Sprintf("registry %s: %s %s: %d %s", e.Host, e.Method, e.Path, e.Status, http.StatusText(e.Status))
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Attempts > 1 {
		s += fmt.Sprintf(" (after %d attempts)", e.Attempts)
	}
	if e.Status == http.StatusUnauthorized {
		s += " (no or wrong credentials: log in with docker login, or set $DOCKER_CONFIG)"
	}
	return s
}

// Unwrap returns the error's category.
func (e *HTTPError) Unwrap() error {
	for _, c := range e.Codes {
		switch c {
		case "BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN", "MANIFEST_BLOB_UNKNOWN", "BLOB_UPLOAD_UNKNOWN":
			return store.ErrNotFound
		case "DIGEST_INVALID":
			return store.ErrDigestMismatch
		case "SIZE_INVALID":
			return store.ErrSizeMismatch
		case "UNAUTHORIZED", "DENIED":
			return ErrUnauthorized
		case "UNSUPPORTED":
			return errors.ErrUnsupported
		}
	}
	switch e.Status {
	case http.StatusNotFound:
		return store.ErrNotFound
	case http.StatusUnauthorized, http.StatusForbidden:
		return ErrUnauthorized
	case http.StatusRequestEntityTooLarge:
		return store.ErrTooLarge
	case http.StatusRequestedRangeNotSatisfiable:
		return io.ErrUnexpectedEOF
	case http.StatusMethodNotAllowed:
		return errors.ErrUnsupported
	}
	return ErrRegistry
}

// retryable reports whether the answer may change when asked again.
func (e *HTTPError) retryable() bool {
	return e.Status == http.StatusTooManyRequests ||
		(e.Status >= 500 && e.Status != http.StatusNotImplemented && e.Status != http.StatusHTTPVersionNotSupported)
}

// Bounds of what an error answer may put into an error message: a hostile
// or broken registry must not fill a terminal or a CI log with its body.
const (
	maxErrorBody    = 64 << 10 // bytes of the body read
	maxErrorMessage = 512      // bytes of HTTPError.Message
	maxErrorCodes   = 16       // codes kept
	maxErrorCode    = 64       // bytes of one code
)

// newHTTPError reads the error body of resp (bounded) into an HTTPError.
func newHTTPError(host string, req *http.Request, resp *http.Response) *HTTPError {
	e := &HTTPError{Host: host, Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e.Codes, e.Message = parseErrorBody(b)
	return e
}

// parseErrorBody returns the distribution error codes of an error body and
// a message for people: the codes with their messages and short details,
// or the body itself when it is short and not a distribution error. The
// message is printable (control characters and invalid UTF-8 are escaped,
// so a body cannot send terminal escapes) and at most maxErrorMessage bytes.
func parseErrorBody(b []byte) (codes []string, message string) {
	var body struct {
		Errors []struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Detail  any    `json:"detail"`
		} `json:"errors"`
	}
	if json.Unmarshal(b, &body) != nil || len(body.Errors) == 0 {
		if s := strings.TrimSpace(string(b)); s != "" && len(s) < 300 {
			return nil, printable(s, maxErrorMessage)
		}
		return nil, ""
	}
	var msgs []string
	for _, x := range body.Errors {
		code := printable(x.Code, maxErrorCode)
		if len(codes) < maxErrorCodes {
			codes = append(codes, code)
		}
		m := code
		if x.Message != "" {
			m += ": " + x.Message
		}
		if x.Detail != nil {
			if d, err := json.Marshal(x.Detail); err == nil && len(d) < 300 {
				m += " " + string(d)
			}
		}
		msgs = append(msgs, m)
	}
	return codes, printable(strings.Join(msgs, "; "), maxErrorMessage)
}

// printable escapes what is not printable in s (as Go escapes it in a
// quoted string) and cuts the result to at most limit bytes, marking the
// cut with "...".
func printable(s string, limit int) string {
	var sb strings.Builder
	for i := 0; i < len(s) && sb.Len() <= limit; {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&sb, `\x%02x`, s[i])
		case unicode.IsPrint(r):
			sb.WriteRune(r)
		default:
			sb.WriteString(strings.Trim(strconv.QuoteRune(r), "'"))
		}
		i += n
	}
	out := sb.String()
	if len(out) <= limit {
		return out
	}
	cut := limit - 3
	for cut > 0 && !utf8.RuneStart(out[cut]) {
		cut--
	}
	return out[:cut] + "..."
}

// retryableNetError reports whether a transport error is a dropped or
// refused connection or a timeout, not a TLS or policy failure.
func retryableNetError(err error) bool {
	if err == nil {
		return false
	}
	var (
		uae  x509.UnknownAuthorityError
		cie  x509.CertificateInvalidError
		hne  x509.HostnameError
		rhe  tls.RecordHeaderError
		verr *tls.CertificateVerificationError
	)
	switch {
	case errors.As(err, &uae), errors.As(err, &cie), errors.As(err, &hne),
		errors.As(err, &rhe), errors.As(err, &verr), errors.Is(err, ErrPlainHTTP):
		return false
	case errors.Is(err, ErrStalled), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.EPIPE), errors.Is(err, net.ErrClosed):
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}
