package metadata_test

import (
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/inorder/inorder/watermark/metadata"
)

// refBestK is bestK written plainly: every value's code length for each of
// the three parameters tried.
func refBestK(vals []int64, sub int64, zeros int) (uint, int) {
	var sum uint64
	for _, v := range vals {
		sum += uint64(v - sub)
	}
	guess := 0
	if count := len(vals) + zeros; count > 0 {
		guess = bits.Len64(sum / uint64(count))
	}
	k0 := max(guess-2, 0)
	bestK, best := uint(0), -1
	for k := k0; k < k0+3 && k <= 30; k++ {
		t := zeros * (k + 1)
		for _, v := range vals {
			t += metadata.RiceLen(uint64(v-sub), uint(k))
		}
		if best < 0 || t < best {
			bestK, best = uint(k), t
		}
	}
	return bestK, best
}

// TestBestKAgainstThePlainSum: the one-pass parameter search gives the plain
// sum's answer, escaped codes (quotients of 24 and more) included.
func TestBestKAgainstThePlainSum(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := range 2000 {
		n := r.IntN(60)
		vals := make([]int64, n)
		scale := int64(1) << r.IntN(31)
		for j := range vals {
			vals[j] = 1 + r.Int64N(scale)
			if r.IntN(20) == 0 { // an outlier that escapes
				vals[j] = 1 + r.Int64N(1<<30)
			}
		}
		sub, zeros := int64(r.IntN(2)), r.IntN(3)*r.IntN(100)
		gk, gb := metadata.BestK(vals, sub, zeros)
		wk, wb := refBestK(vals, sub, zeros)
		if gk != wk || gb != wb {
			t.Fatalf("case %d (%d values, sub %d, zeros %d): bestK = %d, %d bits; plain sum %d, %d", i, n, sub, zeros, gk, gb, wk, wb)
		}
	}
}
