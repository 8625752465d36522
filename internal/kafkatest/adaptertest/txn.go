package adaptertest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/inorder/inorder/internal/kafkatest"
)

// OutputValue is the value of the output of input record (p, o) in the
// exactly-once tests: CheckOutputsOnce counts outputs by it.
func OutputValue(p int32, o int64) []byte { return fmt.Appendf(nil, "%d/%d", p, o) }

// CheckOutputsOnce reads topic out with read_committed isolation and fails
// the test unless it holds exactly one record with OutputValue(p, o) for
// each input offset o below ends[p] (an input topic without gaps), and no
// record whose value starts with "poison" (the output of a failed call).
func CheckOutputsOnce(ctx context.Context, t testing.TB, c *kafkatest.Cluster, out string, ends map[int32]int64) {
	t.Helper()
	if err := c.WaitStable(ctx, out); err != nil {
		t.Fatal(err)
	}
	recs, err := c.ReadCommitted(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	seen := make(map[string]int)
	poison := 0
	for _, r := range recs {
		if strings.HasPrefix(string(r.Value), "poison") {
			poison++
			continue
		}
		seen[string(r.Value)]++
	}
	missing, dups, want := 0, 0, 0
	for p, end := range ends {
		for o := range end {
			want++
			switch n := seen[string(OutputValue(p, o))]; {
			case n == 0:
				missing++
			case n > 1:
				dups += n - 1
			}
		}
	}
	t.Logf("output %q: %d records read committed for %d inputs", out, len(recs), want)
	if missing > 0 || dups > 0 || poison > 0 || len(seen) != want {
		t.Errorf("output %q read committed: %d missing, %d duplicates, %d outputs of failed calls, %d distinct for %d inputs",
			out, missing, dups, poison, len(seen), want)
	}
}
