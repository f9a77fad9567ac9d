package refname

import (
	"strings"
	"testing"
)

const hexA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in, name, digest string
	}{
		{"hello", "docker.io/library/hello:latest", ""},
		{"hello:1.0", "docker.io/library/hello:1.0", ""},
		{"user/app", "docker.io/user/app:latest", ""},
		{"docker.io/library/hello:latest", "docker.io/library/hello:latest", ""},
		{"localhost:5000/a/b:t", "localhost:5000/a/b:t", ""},
		{"localhost:5000/a/b", "localhost:5000/a/b:latest", ""},
		{"localhost/a", "localhost/a:latest", ""},
		{"ghcr.io/o/r:v2", "ghcr.io/o/r:v2", ""},
		{"hello@sha256:" + hexA, "docker.io/library/hello", "sha256:" + hexA},
		{"hello:t@sha256:" + hexA, "docker.io/library/hello:t", "sha256:" + hexA},
		{"sha256:" + hexA, "", "sha256:" + hexA},
	} {
		r, err := Parse(tc.in)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.in, err)
			continue
		}
		if r.Name != tc.name || string(r.Digest) != tc.digest {
			t.Errorf("Parse(%q) = %+v, want name %q digest %q", tc.in, r, tc.name, tc.digest)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "Hello", "hello:", "a//b", "hello@sha256:abc", "-x", "hello:bad tag",
		hexA, // a bare 64-hex name is ambiguous
	} {
		if r, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, want error", in, r)
		}
	}
}

func TestIsDigest(t *testing.T) {
	for in, want := range map[string]bool{
		"sha256:" + hexA:                       true,
		"sha256:" + strings.ToUpper(hexA):      false,
		"sha256:abc":                           false,
		"hello":                                false,
		"hello:latest":                         false,
		"docker.io/library/hello:latest":       false,
		"localhost:5000/a":                     false,
		"md5:d41d8cd98f00b204e9800998ecf8427e": false,
	} {
		if got := IsDigest(in); got != want {
			t.Errorf("IsDigest(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestNormalize(t *testing.T) {
	got, err := Normalize("hello")
	if err != nil || got != "docker.io/library/hello:latest" {
		t.Fatalf("Normalize(hello) = %q, %v", got, err)
	}
	got, err = Normalize("hello@sha256:" + hexA)
	if err != nil || got != "docker.io/library/hello@sha256:"+hexA {
		t.Fatalf("Normalize(pinned) = %q, %v", got, err)
	}
	if _, err := Normalize("sha256:" + hexA); err == nil {
		t.Fatal("Normalize(digest) succeeded")
	}
	if _, err := NormalizeTag("hello@sha256:" + hexA); err == nil {
		t.Fatal("NormalizeTag(pinned) succeeded")
	}
	if got, err := NormalizeTag("a/b:c"); err != nil || got != "docker.io/a/b:c" {
		t.Fatalf("NormalizeTag(a/b:c) = %q, %v", got, err)
	}
}

func TestFamiliar(t *testing.T) {
	for in, want := range map[string]string{
		"docker.io/library/hello:latest": "hello:latest",
		"docker.io/user/app:1":           "user/app:1",
		"localhost:5000/a/b:t":           "localhost:5000/a/b:t",
		"sha256:" + hexA:                 "sha256:" + hexA,
		"Not A Name":                     "Not A Name",
	} {
		if got := Familiar(in); got != want {
			t.Errorf("Familiar(%q) = %q, want %q", in, got, want)
		}
	}
}
