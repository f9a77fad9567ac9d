package writer_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/oci2/oci2/format"
	"github.com/oci2/oci2/image/writer"
)

// TestWriteRejectsBadConfig: a config that would make an invalid runtime
// spec (NUL bytes in Env/Entrypoint/Cmd, a relative WorkingDir) is refused
// with the field named, before any blob is written (create, import and the
// exporter all write through Write).
func TestWriteRejectsBadConfig(t *testing.T) {
	for _, tc := range []struct {
		cfg  ocispec.ImageConfig
		want string
	}{
		{ocispec.ImageConfig{Env: []string{"A=1\x00B=2"}}, `config Env[0] "A=1\x00B=2" contains a NUL byte`},
		{ocispec.ImageConfig{Entrypoint: []string{"/bin/sh", "-c\x00id"}}, `config Entrypoint[1]`},
		{ocispec.ImageConfig{WorkingDir: "relative/dir"}, `config WorkingDir "relative/dir" is not an absolute path`},
	} {
		st := newCountingStore()
		cfg := testConfig
		cfg.Config = tc.cfg
		_, err := writer.Write(context.Background(), st, goldenTree(), writer.Options{Config: cfg})
		if !errors.Is(err, format.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Write: %v, want %q", err, tc.want)
		}
		if len(st.puts) != 0 {
			t.Errorf("%d blobs written for a refused config", len(st.puts))
		}
	}
}
