package chunking

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math/rand"
	"testing"
)

// goldenChunks pins the chunk boundaries and IDs of 4 MiB of seeded random
// data (rand.NewSource(1)) followed by 64 KiB of zeros and 1000 more bytes.
// A change here changes every image digest.
var goldenChunks = []string{
	"125635 e9b8c9cab2c2f170",
	"170827 1a8d6de942995679",
	"222260 167b9c797626a9d7",
	"252183 0025166c81fc270a",
	"45613 27a4d86bf3ed0c40",
	"138018 9ec56f37a8ee838f",
	"25934 6b1319c9d958fade",
	"82314 499b40d0ba48fa79",
	"171448 dcd8f31f137d122f",
	"135488 d733304e9747e16f",
	"81810 233e05accb12983a",
	"155143 13783c5356fac919",
	"21520 a31129e7687cd13d",
	"97451 04eef712da01a59b",
	"64166 e01fb08b1926a595",
	"19577 5b6f6994fcf63f92",
	"83801 f17ca4e4d7fc32df",
	"43718 08e86ca43ee8a300",
	"34180 9608d31c42205539",
	"152141 219849b05a0ba754",
	"161183 d26f0eab2e0ee122",
	"56121 dd920baa2f893170",
	"58643 82cfb16351b8dab9",
	"199680 ccdec7693b2e9c74",
	"156680 9d25b9773625d004",
	"20712 2761def9b6ef88e4",
	"135413 85183f7d57334b45",
	"20789 a6f305b0243aa806",
	"111506 5f6816c967438976",
	"25778 2c135dec94204dae",
	"170469 b0028959c9e3106c",
	"127630 e4345e631dc89dc1",
	"262144 97333c3f956265fe",
	"19064 5612a2c2ea2d4e2a",
	"122882 0965e8a5132fdda5",
	"63247 436e865543e34841",
	"32437 0b5579983a5f5e9c",
	"32038 a186daa033295365",
	"118398 2d75bafe14a2d19e",
	"19667 b59ec15f1865d425",
	"21247 9820575b4f175dc2",
	"51224 6380e49f74e12ca5",
	"82615 d5e8f501ee29efe9",
	"1510 9445555bddf33252",
	"zero 65536",
	"1000 71999826749a9c24",
}

func goldenInput() []byte {
	data := make([]byte, 4<<20+64<<10+1000)
	rng := rand.New(rand.NewSource(1))
	rng.Read(data[:4<<20])
	rng.Read(data[4<<20+64<<10:])
	return data
}

func TestGoldenChunks(t *testing.T) {
	data := goldenInput()
	got := collect(t, func(emit EmitFunc) error { return NewSplitter().Split(bytes.NewReader(data), int64(len(data)), emit) })
	var lines []string
	for _, x := range got {
		if x.Zero {
			lines = append(lines, fmt.Sprintf("zero %d", x.Length))
		} else {
			lines = append(lines, fmt.Sprintf("%d %s", x.Length, hex.EncodeToString(x.Chunk[:8])))
		}
	}
	if fmt.Sprintf("%q", lines) != fmt.Sprintf("%q", goldenChunks) {
		for _, l := range lines {
			fmt.Printf("\t%q,\n", l)
		}
		t.Fatalf("chunks differ from the golden table")
	}
}
