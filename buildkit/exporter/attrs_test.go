package exporter

import (
	"strings"
	"testing"
	"time"

	"github.com/moby/buildkit/exporter/containerimage/exptypes"
	commonexptypes "github.com/moby/buildkit/exporter/exptypes"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The keys are spelled as BuildKit's image exporter spells them.
func TestKeysMatchBuildKit(t *testing.T) {
	for ours, theirs := range map[string]string{
		KeyName:             string(exptypes.OptKeyName),
		KeyPush:             string(exptypes.OptKeyPush),
		KeyPushByDigest:     string(exptypes.OptKeyPushByDigest),
		KeyInsecure:         string(exptypes.OptKeyInsecure),
		KeyRewriteTimestamp: string(exptypes.OptKeyRewriteTimestamp),
		KeySourceDateEpoch:  string(commonexptypes.OptKeySourceDateEpoch),
	} {
		if ours != theirs {
			t.Errorf("key %q, BuildKit spells it %q", ours, theirs)
		}
	}
}

func TestParseAttrs(t *testing.T) {
	a, err := ParseAttrs(map[string]string{
		"name":              "hello, localhost:5000/a/b:v1 hello:latest",
		"rewrite-timestamp": "true",
		"source-date-epoch": "1700000000",
		"annotation.org.opencontainers.image.title": "t",
		"annotation-index.idx":                      "i",
		"annotation-manifest[linux/arm64].arm":      "a",
		"annotation-manifest-descriptor.md":         "d",
		"buildinfo":                                 "ignored",
	})
	if err != nil {
		t.Fatal(err)
	}
	wantNames := []string{"docker.io/library/hello:latest", "localhost:5000/a/b:v1"}
	if strings.Join(a.Names, " ") != strings.Join(wantNames, " ") {
		t.Errorf("names %q, want %q", a.Names, wantNames)
	}
	if !a.RewriteTimestamp || a.Push {
		t.Errorf("rewrite-timestamp %v push %v", a.RewriteTimestamp, a.Push)
	}
	if a.Epoch == nil || !a.Epoch.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("epoch %v", a.Epoch)
	}
	amd := a.Annotations.Platform(&ocispec.Platform{OS: "linux", Architecture: "amd64"})
	arm := a.Annotations.Platform(&ocispec.Platform{OS: "linux", Architecture: "arm64"})
	if amd.Manifest["org.opencontainers.image.title"] != "t" || amd.Index["idx"] != "i" ||
		amd.ManifestDescriptor["md"] != "d" || amd.Manifest["arm"] != "" || arm.Manifest["arm"] != "a" {
		t.Errorf("annotations amd64 %+v arm64 %+v", amd, arm)
	}
}

func TestParseAttrsPush(t *testing.T) {
	a, err := ParseAttrs(map[string]string{
		"name": "127.0.0.1:5000/oci2/app:v1", "push": "true", "push-by-digest": "true", "registry.insecure": "true",
		"registry.idle-timeout": "90s",
	})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Push || !a.PushByDigest || !a.Insecure || a.IdleTimeout != 90*time.Second || len(a.Names) != 1 {
		t.Errorf("push attrs %+v", a)
	}
}

func TestParseAttrsErrors(t *testing.T) {
	for _, tc := range []struct {
		attrs map[string]string
		want  string
	}{
		{map[string]string{"nmae": "x"}, `unknown attribute "nmae" (valid: buildinfo, buildinfo-attrs, name, push, push-by-digest, registry.idle-timeout, registry.insecure, rewrite-timestamp, source-date-epoch`},
		{map[string]string{"dest": "/tmp/x"}, `unknown attribute "dest"`},
		{map[string]string{"compression": "zstd"}, `unknown attribute "compression"`},
		{map[string]string{"rewrite-timestamp": "yes please"}, `rewrite-timestamp="yes please": not a bool`},
		{map[string]string{"push": "true"}, "push=true needs name="},
		{map[string]string{"registry.idle-timeout": "-5s"}, `registry.idle-timeout="-5s": want a positive duration`},
		{map[string]string{"registry.idle-timeout": "60"}, `registry.idle-timeout="60": want a positive duration`},
		{map[string]string{"push-by-digest": "true", "name": "localhost:5000/x"}, "push-by-digest=true needs push=true"},
		{map[string]string{"push": "maybe", "name": "localhost:5000/x"}, `push="maybe": not a bool`},
		{map[string]string{"name": "Bad_Name"}, `name="Bad_Name"`},
		{map[string]string{"name": "sha256:" + strings.Repeat("a", 64)}, "not a digest"},
		{map[string]string{"source-date-epoch": "yesterday"}, "invalid source-date-epoch"},
		{map[string]string{"annotation-bogus.x": "y"}, `annotation`},
	} {
		_, err := ParseAttrs(tc.attrs)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAttrs(%v): error %v, want it to contain %q", tc.attrs, err, tc.want)
		}
	}
}
