package format

import (
	"path"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// ValidateConfig checks the parts of an image config that reach a runtime
// spec (SPEC.md §6.1): a config that passes makes a config.json runc
// accepts. Env entries are NAME=value with a non-empty name; Env, User,
// Entrypoint, Cmd and WorkingDir contain no NUL byte (execve and the kernel
// cut strings there); WorkingDir, when set, is absolute. The error names
// the field.
func ValidateConfig(c *ocispec.ImageConfig) error {
	for i, e := range c.Env {
		name, _, ok := strings.Cut(e, "=")
		switch {
		case strings.IndexByte(e, 0) >= 0:
			return invalidf("config Env[%d] %q contains a NUL byte", i, e)
		case !ok:
			return invalidf("config Env[%d] %q is not NAME=value", i, e)
		case name == "":
			return invalidf("config Env[%d] %q has an empty name", i, e)
		}
	}
	for _, f := range []struct {
		name string
		args []string
	}{{"Entrypoint", c.Entrypoint}, {"Cmd", c.Cmd}} {
		for i, a := range f.args {
			if strings.IndexByte(a, 0) >= 0 {
				return invalidf("config %s[%d] %q contains a NUL byte", f.name, i, a)
			}
		}
	}
	if strings.IndexByte(c.User, 0) >= 0 {
		return invalidf("config User %q contains a NUL byte", c.User)
	}
	if w := c.WorkingDir; w != "" && (strings.IndexByte(w, 0) >= 0 || !path.IsAbs(w)) {
		return invalidf("config WorkingDir %q is not an absolute path without NUL bytes", w)
	}
	return nil
}
