package registry

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/oci2/oci2/store"
)

// httpErrorOf builds the HTTPError of an answer with status and body.
func httpErrorOf(status int, body []byte) *HTTPError {
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1:5000/v2/r/blobs/sha256:00", nil)
	resp := &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader(string(body)))}
	return newHTTPError("127.0.0.1:5000", req, resp)
}

// checkPrintable fails t unless s is valid UTF-8 made of printable runes.
func checkPrintable(t *testing.T, what, s string) {
	t.Helper()
	if !utf8.ValidString(s) {
		t.Fatalf("%s is not valid UTF-8: %q", what, s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			t.Fatalf("%s holds unprintable %U: %q", what, r, s)
		}
	}
}

func TestErrorBodyHostile(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want string // substring of the message
	}{
		{"terminal escape in message", `{"errors":[{"code":"DENIED","message":"\u001b[2J\u001b]0;owned\u0007gone"}]}`, `DENIED: \x1b[2J\x1b]0;owned\agone`},
		{"escape in code", `{"errors":[{"code":"X\u001b[31m","message":"m"}]}`, `X\x1b[31m: m`},
		{"plain body with escape", "oops\x1b[1Ahidden", `oops\x1b[1Ahidden`},
		{"invalid utf-8", "bad \xff\xfe bytes", `bad \xff\xfe bytes`},
		{"huge message", `{"errors":[{"code":"UNKNOWN","message":"` + strings.Repeat("A", 60000) + `"}]}`, "UNKNOWN: AAAA"},
		{"many errors", `{"errors":[` + strings.Repeat(`{"code":"UNKNOWN","message":"x"},`, 500) + `{"code":"BLOB_UNKNOWN"}]}`, "UNKNOWN: x; UNKNOWN: x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := httpErrorOf(http.StatusForbidden, []byte(tc.body))
			if !strings.Contains(e.Message, tc.want) {
				t.Errorf("message %q does not contain %q", e.Message, tc.want)
			}
			if len(e.Message) > maxErrorMessage || len(e.Codes) > maxErrorCodes {
				t.Errorf("message of %d bytes, %d codes: over the bounds %d, %d", len(e.Message), len(e.Codes), maxErrorMessage, maxErrorCodes)
			}
			checkPrintable(t, "Error()", e.Error())
		})
	}
}

func TestErrorBodyCategories(t *testing.T) {
	e := httpErrorOf(http.StatusNotFound, []byte(`{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown to registry","detail":{"digest":"sha256:00"}}]}`))
	if !errors.Is(e, store.ErrNotFound) {
		t.Errorf("%v: not ErrNotFound", e)
	}
	if want := `BLOB_UNKNOWN: blob unknown to registry {"digest":"sha256:00"}`; e.Message != want {
		t.Errorf("message %q, want %q", e.Message, want)
	}
}

// FuzzErrorBody feeds arbitrary error bodies to the parser: it must not
// panic, must keep the message bounded and printable, and must categorize
// every answer.
func FuzzErrorBody(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"errors":[]}`, `not json`,
		`{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown","detail":{"digest":"sha256:00"}}]}`,
		`{"errors":[{"code":"DENIED","message":"\u001b[2J"}]}`,
		`{"errors":[{"code":"UNAUTHORIZED","detail":[1,2,3]},{"code":"SIZE_INVALID"}]}`,
		`{"errors":[{"code":1}]}`, `{"errors":null}`, "\xff\xfe\x00",
	} {
		f.Add(403, []byte(s))
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			status = 500
		}
		e := httpErrorOf(status, body)
		if len(e.Message) > maxErrorMessage || len(e.Codes) > maxErrorCodes {
			t.Fatalf("message of %d bytes, %d codes", len(e.Message), len(e.Codes))
		}
		for _, c := range e.Codes {
			if len(c) > maxErrorCode {
				t.Fatalf("code of %d bytes", len(c))
			}
		}
		checkPrintable(t, "Error()", e.Error())
		if errors.Unwrap(e) == nil {
			t.Fatal("no category")
		}
	})
}
