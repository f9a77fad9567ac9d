package pack

import (
	"context"
	"crypto/sha256"
	"fmt"
	"reflect"
	"testing"

	"github.com/oci2/oci2/format"
)

func TestPackerDeterministicAcrossWorkers(t *testing.T) {
	chunks := genChunks(2, 24<<20)
	one, _ := runPacker(t, chunks, Options{Workers: 1, Store: newMemStore()})
	four, _ := runPacker(t, chunks, Options{Workers: 4, Store: newMemStore()})
	if !reflect.DeepEqual(one, four) {
		t.Fatal("Workers=1 and Workers=4 give different pack indexes")
	}
}

// goldenPacks pins the pack index and pack digests of genChunks(2, 24 MiB):
// they change when the encoder's output changes (a new EncoderID).
var goldenPacks = []string{
	"36 frames, 5065359 bytes, index sha256:727dfb7ac6658bd774111fe0ac3f92f3a7ef600a914606143993ca54aaa7d00c, pack sha256:c075dc7d8c60ac013777b1e967b41110a47484d2ae750725e10e6f8f124d8f3f",
	"47 frames, 9709158 bytes, index sha256:9f5e4de0661f3cda4bc4aeea7c183ced15d5017c8284fd1b50a573f7d2966763, pack sha256:df9d5bc657d94b6d592e257356ee09a1f18aa8e696a35a4c2ca944dadbf48a32",
	"3 frames, 549810 bytes, index sha256:d18fc36a633533a4713233fed4606b561d5cd7d48258d02405c6b8d47fa018f2, pack sha256:35e97526e12fa226fc052e6af7d6bde5205e0f3d4edfb3bfc3de070c2f58844d",
}

func TestGoldenPacks(t *testing.T) {
	st := newMemStore()
	packs, _ := runPacker(t, genChunks(2, 24<<20), Options{Store: st})
	var got []string
	for i := range packs {
		enc, err := packs[i].Encode()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		if err := WritePack(context.Background(), h, &packs[i], st.frame); err != nil {
			t.Fatal(err)
		}
		got = append(got, fmt.Sprintf("%d frames, %d bytes, index %s, pack sha256:%x",
			len(packs[i].Frames), packs[i].PackSize(), format.Sum(enc), h.Sum(nil)))
	}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", goldenPacks) {
		for _, l := range got {
			fmt.Printf("\t%q,\n", l)
		}
		t.Fatal("packs differ from the golden digests: was the encoder changed?")
	}
}
