package format

import (
	"errors"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestValidateConfig(t *testing.T) {
	ok := ocispec.ImageConfig{User: "app:staff", Env: []string{"PATH=/bin", "EMPTY=", "A==b"},
		Entrypoint: []string{"/bin/app", ""}, Cmd: []string{"x y"}, WorkingDir: "/srv/../x"}
	if err := ValidateConfig(&ok); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	cases := []struct {
		name string
		edit func(c *ocispec.ImageConfig)
		want string
	}{
		{"env NUL in value", func(c *ocispec.ImageConfig) { c.Env = []string{"PATH=/bin", "A=x\x00y"} }, `config Env[1] "A=x\x00y" contains a NUL byte`},
		{"env NUL in name", func(c *ocispec.ImageConfig) { c.Env = []string{"A\x00B=1"} }, `config Env[0] "A\x00B=1" contains a NUL byte`},
		{"env no =", func(c *ocispec.ImageConfig) { c.Env = []string{"PATH"} }, `config Env[0] "PATH" is not NAME=value`},
		{"env empty name", func(c *ocispec.ImageConfig) { c.Env = []string{"=x"} }, `config Env[0] "=x" has an empty name`},
		{"entrypoint NUL", func(c *ocispec.ImageConfig) { c.Entrypoint = []string{"/bin/sh\x00-c"} }, `config Entrypoint[0] "/bin/sh\x00-c" contains a NUL byte`},
		{"cmd NUL", func(c *ocispec.ImageConfig) { c.Cmd = []string{"a", "\x00"} }, `config Cmd[1] "\x00" contains a NUL byte`},
		{"user NUL", func(c *ocispec.ImageConfig) { c.User = "root\x00" }, `config User "root\x00" contains a NUL byte`},
		{"workdir relative", func(c *ocispec.ImageConfig) { c.WorkingDir = "srv" }, `config WorkingDir "srv" is not an absolute path`},
		{"workdir dot", func(c *ocispec.ImageConfig) { c.WorkingDir = "." }, `config WorkingDir "." is not an absolute path`},
		{"workdir NUL", func(c *ocispec.ImageConfig) { c.WorkingDir = "/srv\x00" }, `config WorkingDir "/srv\x00" is not an absolute path without NUL bytes`},
	}
	for _, c := range cases {
		cfg := ok
		c.edit(&cfg)
		err := ValidateConfig(&cfg)
		checkInvalid(t, c.name, err, c.want)
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", c.name, err)
		}
	}
}
