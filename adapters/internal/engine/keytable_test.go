package engine

import (
	"hash/maphash"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestKeyTableAgainstAMap puts, finds and deletes keys at random, with
// hashes that collide on purpose (1 and 8 values for 200 keys) and with
// maphash's, and checks every lookup against a map.
func TestKeyTableAgainstAMap(t *testing.T) {
	seed := maphash.MakeSeed()
	for _, hashes := range []uint64{1, 8, 0} { // 0: maphash
		var kt keyTable[int]
		want := map[string]*keyQ[int]{}
		rng := rand.New(rand.NewPCG(1, hashes))
		for step := range 20_000 {
			k := strconv.Itoa(rng.IntN(200))
			h := maphash.String(seed, k)
			if hashes > 0 {
				h %= hashes
			}
			got := kt.get(h, []byte(k))
			if got != want[k] {
				t.Fatalf("hashes %d, step %d: get(%q) = %p, want %p", hashes, step, k, got, want[k])
			}
			switch {
			case got == nil && want[k] == nil:
				kq := &keyQ[int]{hash: h, key: []byte(k)}
				kt.put(kq)
				want[k] = kq
			case want[k] != nil && rng.IntN(2) == 0:
				kt.del(want[k])
				delete(want, k)
			}
			if kt.n != len(want) {
				t.Fatalf("hashes %d, step %d: %d keys, want %d", hashes, step, kt.n, len(want))
			}
			for k, kq := range want {
				if got := kt.get(kq.hash, []byte(k)); got != kq {
					t.Fatalf("hashes %d, step %d: %q lost (got %p, want %p)", hashes, step, k, got, kq)
				}
			}
		}
	}
}
