package importspec

import (
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
)

func TestValidate(t *testing.T) {
	src := digest.FromString("manifest")
	good := func() *Image {
		return &Image{Name: "hello:latest", Manifest: []byte("{}"), Config: []byte("{}"),
			ChainID: RootChainID(src), Source: src, Labels: map[string]string{LabelImage: src.String()}}
	}
	if err := good().Validate(); err != nil {
		t.Fatalf("valid description: %v", err)
	}
	for _, c := range []struct {
		name, want string
		edit       func(*Image)
	}{
		{"no name", "no image name", func(im *Image) { im.Name = "" }},
		{"no config", "no manifest or config", func(im *Image) { im.Config = nil }},
		{"bad source", "source", func(im *Image) { im.Source = "sha256:nope" }},
		{"other chain", "chain ID", func(im *Image) { im.ChainID = digest.FromString("x") }},
		{"label mismatch", LabelImage, func(im *Image) { im.Labels[LabelImage] = digest.FromString("x").String() }},
	} {
		im := good()
		c.edit(im)
		if err := im.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error naming %q", c.name, err, c.want)
		}
	}
}
