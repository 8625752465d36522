package adaptertest_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

type call = adaptertest.Call

func TestCheckOrderFindsOverlapsAndDisorder(t *testing.T) {
	byKey := adaptertest.Ordering{Mode: adaptertest.ByKey}
	cases := []struct {
		name       string
		o          adaptertest.Ordering
		calls      []call
		violations []string // substrings, one per violation
		rewinds    int
	}{
		{"serial in order", byKey, []call{
			{Member: "A", P: 0, O: 1, Key: "k", Start: 1, End: 2},
			{Member: "A", P: 0, O: 3, Key: "k", Start: 3, End: 4},
		}, nil, 0},
		{"overlap on one key", byKey, []call{
			{Member: "A", P: 0, O: 1, Key: "k", Start: 1, End: 3},
			{Member: "A", P: 0, O: 2, Key: "k", Start: 2, End: 4},
		}, []string{"started at 2 while offset 1"}, 0},
		{"overlap across members", byKey, []call{
			{Member: "A", P: 0, O: 1, Key: "k", Start: 1, End: 5},
			{Member: "B", P: 0, O: 1, Key: "k", Start: 2, End: 4},
		}, []string{"started at 2 while offset 1 (A) ran until 5"}, 1},
		{"out of order", byKey, []call{
			{Member: "A", P: 0, O: 2, Key: "k", Start: 1, End: 2},
			{Member: "A", P: 0, O: 1, Key: "k", Start: 3, End: 4},
		}, []string{"A started offset 1 after offset 2"}, 0},
		{"rewind at a member change", byKey, []call{
			{Member: "A", P: 0, O: 2, Key: "k", Start: 1, End: 2},
			{Member: "B", P: 0, O: 2, Key: "k", Start: 3, End: 4},
		}, nil, 1},
		{"other keys and partitions overlap freely", byKey, []call{
			{Member: "A", P: 0, O: 1, Key: "k", Start: 1, End: 9},
			{Member: "A", P: 0, O: 2, Key: "j", Start: 2, End: 8},
			{Member: "A", P: 1, O: 1, Key: "k", Start: 3, End: 7},
		}, nil, 0},
		{"keyless overlap allowed", byKey, []call{
			{Member: "A", P: 0, O: 1, Start: 1, End: 9},
			{Member: "A", P: 0, O: 2, Start: 2, End: 8},
		}, nil, 0},
		{"keyless overlap forbidden when ordered", adaptertest.Ordering{Mode: adaptertest.ByKey, KeylessOrdered: true}, []call{
			{Member: "A", P: 0, O: 1, Start: 1, End: 9},
			{Member: "A", P: 0, O: 2, Start: 2, End: 8},
		}, []string{`key "": offset 2`}, 0},
		{"by partition", adaptertest.Ordering{Mode: adaptertest.ByPartition}, []call{
			{Member: "A", P: 0, O: 1, Key: "k", Start: 1, End: 3},
			{Member: "A", P: 0, O: 2, Key: "j", Start: 2, End: 4},
		}, []string{"partition 0: offset 2 (A) started at 2"}, 0},
		{"unordered", adaptertest.Ordering{}, []call{
			{Member: "A", P: 0, O: 2, Key: "k", Start: 1, End: 3},
			{Member: "A", P: 0, O: 1, Key: "k", Start: 2, End: 4},
		}, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rep := adaptertest.CheckOrder(tc.calls, tc.o, nil)
			if len(rep.Violations) != len(tc.violations) || rep.Rewinds != tc.rewinds {
				t.Fatalf("violations %q, rewinds %d; want %d violations, %d rewinds", rep.Violations, rep.Rewinds, len(tc.violations), tc.rewinds)
			}
			for i, v := range tc.violations {
				if !strings.Contains(rep.Violations[i], v) {
					t.Errorf("violation %q does not contain %q", rep.Violations[i], v)
				}
			}
		})
	}
	rep := adaptertest.CheckOrder([]call{
		{Member: "A", P: 0, O: 1, Key: "k", Start: 1, End: 2},
		{Member: "B", P: 0, O: 2, Key: "k", Start: 3, End: 4},
		{Member: "B", P: 0, O: 3, Key: "k", Start: 5, End: 6},
		{Member: "A", P: 0, O: 3, Key: "k", Start: 7, End: 8},
	}, byKey, nil)
	if rep.Handovers != 2 || rep.Rewinds != 1 || len(rep.Violations) != 0 {
		t.Errorf("handovers %d, rewinds %d, violations %q; want 2, 1, none", rep.Handovers, rep.Rewinds, rep.Violations)
	}
	// Keys are checked against the produced ones.
	keys := map[adaptertest.PO]string{{P: 0, O: 1}: "k"}
	rep = adaptertest.CheckOrder([]call{{P: 0, O: 1, Key: "x", Start: 1, End: 2}, {P: 0, O: 7, Key: "k", Start: 3, End: 4}}, byKey, keys)
	if len(rep.Violations) != 2 {
		t.Errorf("wrong key and unknown offset: violations %q, want 2", rep.Violations)
	}
	// Overlap counters.
	rep = adaptertest.CheckOrder([]call{
		{P: 0, O: 1, Key: "a", Start: 1, End: 4},
		{P: 0, O: 2, Start: 2, End: 5},
		{P: 0, O: 3, Start: 3, End: 6},
	}, byKey, nil)
	if rep.PartitionOverlaps != 2 || rep.KeylessOverlaps != 1 {
		t.Errorf("partition overlaps %d, keyless overlaps %d; want 2, 1", rep.PartitionOverlaps, rep.KeylessOverlaps)
	}
}

func TestCallRecorderAndCallLogRecordStartBeforeEnd(t *testing.T) {
	r := adaptertest.NewCallRecorder()
	r.Handle("A", 1, 5, []byte("k"), func() {
		r.Handle("A", 1, 6, nil, func() {})
	})
	cs := r.Calls()
	if len(cs) != 2 || r.Distinct() != 2 {
		t.Fatalf("calls %+v, distinct %d", cs, r.Distinct())
	}
	// The inner call ended first, inside the outer one.
	if in, out := cs[0], cs[1]; in.O != 6 || out.O != 5 || out.Key != "k" || !(out.Start < in.Start && in.End < out.End) {
		t.Errorf("calls %+v: want offset 6 nested in offset 5", cs)
	}

	path := filepath.Join(t.TempDir(), "calls")
	l, err := adaptertest.OpenCallLog(path, "3")
	if err != nil {
		t.Fatal(err)
	}
	for o := range int64(3) {
		if err := l.Handle(2, o, func() {}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	keys := map[adaptertest.PO]string{{P: 2, O: 1}: "k"}
	got := adaptertest.ReadCalls(t, path, keys)
	if len(got) != 3 || got[1] != (call{Member: "3", P: 2, O: 1, Key: "k", Start: 3, End: 4}) {
		t.Errorf("read %+v", got)
	}
}

// callsAt returns calls of member 1 at offsets seq of partition 0, in that
// start order, one after another, with their keys from keys.
func callsAt(keys map[adaptertest.PO]string, seq ...int64) []call {
	var cs []call
	for i, o := range seq {
		cs = append(cs, call{Member: "1", P: 0, O: o, Key: keys[adaptertest.PO{P: 0, O: o}], Start: int64(2 * i), End: int64(2*i + 1)})
	}
	return cs
}

func TestCheckRestartWantsEachKeyFromItsCommitPointWithoutGaps(t *testing.T) {
	// Partition 0: key a at 0 2 4, key b at 1 3; covered: 0 and 3.
	keys := map[adaptertest.PO]string{{P: 0, O: 0}: "a", {P: 0, O: 1}: "b", {P: 0, O: 2}: "a", {P: 0, O: 3}: "b", {P: 0, O: 4}: "a"}
	covered := func(p int32, o int64) bool { return p == 0 && (o == 0 || o == 3) }
	at := func(seq ...int64) []call { return callsAt(keys, seq...) }
	for _, tc := range []struct {
		name string
		offs []int64
		bad  int
	}{
		{"all uncovered in order", []int64{1, 2, 4}, 0},
		{"a prefix per key (killed early)", []int64{2}, 0},
		{"nothing", nil, 0},
		{"covered offset again", []int64{0, 2}, 2}, // 0 is covered: 0 is bad, and 2 then comes second
		{"gap in a key", []int64{4}, 1},
		{"out of order", []int64{4, 2}, 2},
		{"beyond the key's end", []int64{1, 1}, 1},
	} {
		if bad := adaptertest.CheckRestart(at(tc.offs...), keys, covered, true); len(bad) != tc.bad {
			t.Errorf("%s: %d bad %q, want %d", tc.name, len(bad), bad, tc.bad)
		}
	}
}

func TestCheckRestartTakesUnorderedKeylessRecordsInAnyOrderOnceEach(t *testing.T) {
	// Partition 0: keyless at 0 1 2 4, key a at 3; covered: 0.
	keys := map[adaptertest.PO]string{{P: 0, O: 0}: "", {P: 0, O: 1}: "", {P: 0, O: 2}: "", {P: 0, O: 3}: "a", {P: 0, O: 4}: ""}
	covered := func(p int32, o int64) bool { return p == 0 && o == 0 }
	at := func(seq ...int64) []call { return callsAt(keys, seq...) }
	for _, tc := range []struct {
		name    string
		offs    []int64
		ordered int // bad calls with KeylessOrdered
		bad     int // without
	}{
		{"in order", []int64{1, 2, 3, 4}, 0, 0},
		{"keyless out of order", []int64{4, 2, 3, 1}, 2, 0},
		{"keyless with a gap (killed, or still running)", []int64{2, 3}, 1, 0},
		{"covered keyless again", []int64{0, 1}, 2, 1},
		{"keyless twice", []int64{1, 1}, 1, 1},
	} {
		if bad := adaptertest.CheckRestart(at(tc.offs...), keys, covered, true); len(bad) != tc.ordered {
			t.Errorf("%s, keyless ordered: %d bad %q, want %d", tc.name, len(bad), bad, tc.ordered)
		}
		if bad := adaptertest.CheckRestart(at(tc.offs...), keys, covered, false); len(bad) != tc.bad {
			t.Errorf("%s, keyless unordered: %d bad %q, want %d", tc.name, len(bad), bad, tc.bad)
		}
	}
}
