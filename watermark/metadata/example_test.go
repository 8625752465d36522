package metadata_test

import (
	"fmt"

	"github.com/inorder/inorder/ordset"
	"github.com/inorder/inorder/watermark/metadata"
)

// A partition's commit point is held at 1000 by one slow message while the
// 50,000 after it are done. The metadata committed with offset 1000 lets the
// next owner skip them.
func Example() {
	done := ordset.New() // in an adapter: commit := partition.Snapshot(done)
	done.AddRange(1001, 51_001)
	meta, complete, err := metadata.Encode(1000, done, metadata.DefaultMaxBytes)
	if err != nil {
		panic(err)
	}
	fmt.Println(meta, len(meta), complete)

	// The next owner reads offset 1000 and meta back from the group.
	restored, err := metadata.Decode(meta, 1000)
	if err != nil {
		fmt.Println("ignoring commit metadata:", err) // log it and go on
	}
	lo, _ := restored.Min()
	hi, _ := restored.Max()
	fmt.Println(restored.Len(), lo, hi)

	// Another client's metadata is reported, never misread.
	_, err = metadata.Decode("some-other-client", 1000)
	fmt.Println(err)
	// Output:
	// ioS8mgzojp-X 12 true
	// 50000 1001 51000
	// metadata: not inorder commit metadata (it does not start with "io")
}
