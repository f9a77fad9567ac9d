package main

import (
	"compress/gzip"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// layeredImages are v1 and v2 as a Dockerfile build pushes them: the base
// tree as one gzip layer, shared, and each version's difference to it as a
// second layer.
type layeredImages struct {
	work string
	imgs []v1.Image
}

func newLayered(work, base, vers1, vers2 string) (*layeredImages, error) {
	dir := filepath.Join(work, "layers")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	bl, err := gzipLayer(layer{Key: "base", Dir: base}, filepath.Join(dir, "base.tar.gz"))
	if err != nil {
		return nil, err
	}
	l := &layeredImages{work: work}
	for i, v := range []string{vers1, vers2} {
		top, err := gzipLayer(layer{Key: filepath.Base(v), Parent: base, Dir: v}, filepath.Join(dir, fmt.Sprintf("top-%d.tar.gz", i)))
		if err != nil {
			return nil, err
		}
		img, err := mutate.AppendLayers(empty.Image, bl, top)
		if err != nil {
			return nil, err
		}
		cf, err := img.ConfigFile()
		if err != nil {
			return nil, err
		}
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", "amd64"
		if img, err = mutate.ConfigFile(img, cf); err != nil {
			return nil, err
		}
		l.imgs = append(l.imgs, img)
	}
	return l, nil
}

// gzipLayer writes l as a PAX tar through gzip -6 into out.
func gzipLayer(l layer, out string) (v1.Layer, error) {
	f, err := os.Create(out)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, 6)
	if err != nil {
		return nil, err
	}
	if _, _, err := writeLayerTar(l, zw); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return tarball.LayerFromFile(out)
}

// counts pushes v1 then v2, and pulls v1 then v2 into one "store" (layers
// already there are not fetched, as docker and containerd do; fetched
// layers are extracted).
func (l *layeredImages) counts(ctx context.Context, host string) (transfer, error) {
	var t transfer
	repo := host + "/layered/app"
	for i, tag := range []string{"v1", "v2"} {
		s, err := counted(func(rt http.RoundTripper) error {
			ref, err := name.ParseReference(repo + ":" + tag)
			if err != nil {
				return err
			}
			return remote.Write(ref, l.imgs[i], remote.WithTransport(rt), remote.WithAuth(authn.Anonymous), remote.WithContext(ctx))
		})
		if err != nil {
			return t, fmt.Errorf("layered push %s: %w", tag, err)
		}
		if i == 0 {
			t.PushV1 = s
		} else {
			t.PushV2 = s
		}
	}
	have := map[v1.Hash]bool{}
	for i, tag := range []string{"v1", "v2"} {
		dest := filepath.Join(l.work, "layered-"+tag)
		s, err := counted(func(rt http.RoundTripper) error {
			return pullLayered(ctx, repo+":"+tag, rt, have, dest)
		})
		os.RemoveAll(dest)
		if err != nil {
			return t, fmt.Errorf("layered pull %s: %w", tag, err)
		}
		if i == 0 {
			t.PullV1 = s
		} else {
			t.PullV2 = s
		}
	}
	return t, nil
}

// pullLayered fetches the layers of ref not in have (nil: none) and
// extracts them in order into dest with tar -xz.
func pullLayered(ctx context.Context, ref string, rt http.RoundTripper, have map[v1.Hash]bool, dest string) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	img, err := remote.Image(r, remote.WithTransport(rt), remote.WithAuth(authn.Anonymous), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return err
		}
		if have[d] {
			continue
		}
		rc, err := l.Compressed()
		if err != nil {
			return err
		}
		cmd := exec.CommandContext(ctx, "tar", "-xz", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", dest)
		cmd.Stdin = rc
		out, err := cmd.CombinedOutput()
		rc.Close()
		if err != nil {
			return fmt.Errorf("extracting layer %s: %w: %s", d, err, tail(string(out), 500))
		}
		if have != nil {
			have[d] = true
		}
	}
	return nil
}
