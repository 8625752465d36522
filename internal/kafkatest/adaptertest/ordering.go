package adaptertest

// The ordering tests consume a keyed topic with an ordering mode (ByKey or
// ByPartition) and check, from the handlers' own record of every call
// (member, partition, offset, key, start, end; start and end from one
// atomic sequence, not from a clock), that calls which must not overlap did
// not, that they started in offset order, and that nothing was lost. The
// adapters' tests supply a StartMember that runs one consumer; the drivers
// here (RunOrdering, RunOrderingRebalance, RunOrderingCrash) do the rest.

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// Mode is an adapter's ordering mode, as the tests name it (adaptertest
// knows no adapter: each test maps it to its adapter's option).
type Mode int

const (
	// Unordered lets any calls overlap.
	Unordered Mode = iota
	// ByKey runs the calls of one key of a partition one at a time, in offset order.
	ByKey
	// ByPartition runs the calls of a partition one at a time, in offset order.
	ByPartition
)

// String returns the mode's name.
func (m Mode) String() string {
	switch m {
	case Unordered:
		return "Unordered"
	case ByKey:
		return "ByKey"
	case ByPartition:
		return "ByPartition"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// Ordering is what a member is configured with.
type Ordering struct {
	Mode           Mode
	KeylessOrdered bool // ByKey: the keyless messages are one key
}

// HandleFunc is what a member's handler calls for each message: its
// partition, offset and key. It sleeps for the message's handling and
// records the call; it is safe for concurrent use.
type HandleFunc func(p int32, o int64, key []byte)

// StartMember runs one consumer of group on topic with ordering o (and the
// adapter's fast test timeouts and a concurrency of its choice), whose
// handler calls h for every message and returns nil, until stop, which
// returns Run's error.
type StartMember func(tb testing.TB, c *kafkatest.Cluster, group, topic string, o Ordering, h HandleFunc) (stop func() error)

// KeyedTopic is a produced topic of keyed and keyless records: the key of
// every (partition, offset) and the log end of every partition.
type KeyedTopic struct {
	Keys map[PO]string // "" for a keyless record
	Ends map[int32]int64
}

// ProduceKeyedTopic produces n records to topic (partitions partitions,
// already created): one in 20 is keyless (alternately a nil and an empty
// key), in runs of 10 to one partition, the others carry one of keys keys, chosen at random, each key
// always to the same partition (key index modulo partitions).
func ProduceKeyedTopic(ctx context.Context, tb testing.TB, c *kafkatest.Cluster, topic string, partitions int32, n, keys int) *KeyedTopic {
	tb.Helper()
	recs := make([]kafkatest.KeyedRecord, n)
	for i := range recs {
		r := kafkatest.KeyedRecord{Value: []byte(strconv.Itoa(i))}
		switch {
		case i%200 < 10: // a run of keyless records in one partition
			r.Partition = int32(i/200) % partitions
			if i%2 == 1 {
				r.Key = []byte{}
			}
		default:
			k := rand.IntN(keys)
			r.Partition, r.Key = int32(k)%partitions, fmt.Appendf(nil, "key-%04d", k)
		}
		recs[i] = r
	}
	offs, err := c.ProduceKeyed(ctx, topic, recs)
	if err != nil {
		tb.Fatal(err)
	}
	kt := &KeyedTopic{Keys: make(map[PO]string, n), Ends: map[int32]int64{}}
	for i, r := range recs {
		kt.Keys[PO{r.Partition, offs[i]}] = string(r.Key)
		kt.Ends[r.Partition] = max(kt.Ends[r.Partition], offs[i]+1)
	}
	return kt
}

// Call is one handler call as its handler recorded it.
type Call struct {
	Member     string // the consumer (or process) that made it
	P          int32
	O          int64
	Key        string // "" if keyless
	Start, End int64  // from the recorder's sequence: Start < End
}

// CallRecorder records handler calls with start and end taken from one
// atomic sequence. Safe for concurrent use.
type CallRecorder struct {
	seq   atomic.Int64
	mu    sync.Mutex
	calls []Call
	seen  map[PO]bool
}

// NewCallRecorder returns an empty CallRecorder.
func NewCallRecorder() *CallRecorder { return &CallRecorder{seen: map[PO]bool{}} }

// Handle takes a start number, runs work, takes an end number and records
// the call of member for offset o of partition p with key.
func (r *CallRecorder) Handle(member string, p int32, o int64, key []byte, work func()) {
	start := r.seq.Add(1)
	work()
	end := r.seq.Add(1)
	r.mu.Lock()
	r.calls = append(r.calls, Call{member, p, o, string(key), start, end})
	r.seen[PO{p, o}] = true
	r.mu.Unlock()
}

// Distinct returns the number of distinct (partition, offset) handled.
func (r *CallRecorder) Distinct() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

// Calls returns a copy of the calls recorded so far.
func (r *CallRecorder) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// OrderReport is what CheckOrder found.
type OrderReport struct {
	Calls int
	// Violations: calls that overlapped or started out of offset order
	// where the ordering forbids it, and calls whose key is not the
	// produced one.
	Violations []string
	// Rewinds counts calls whose offset was not above the previous call of
	// their key (or partition) because another member took over: a
	// redelivery, allowed.
	Rewinds int
	// Handovers counts calls made by another member than the previous call
	// of their key (or partition): where the cross-member check applied.
	Handovers int
	// PartitionOverlaps counts calls that started while another call of the
	// same partition (any key) was running: concurrency evidence for ByKey,
	// a violation for ByPartition.
	PartitionOverlaps int
	// KeylessOverlaps counts keyless calls that started while another
	// keyless call of the same partition was running (allowed unless
	// KeylessOrdered).
	KeylessOverlaps int
}

// CheckOrder checks calls, all timed by one sequence, against o: per group
// of calls that must not overlap ((partition, key) for ByKey, the keyless
// ones as one key if KeylessOrdered and not checked otherwise; the
// partition for ByPartition; nothing for Unordered), sorted by start, each
// call must start after every earlier one ended, and at an offset above
// the previous one unless the member changed (a Rewind). If keys is not
// nil, each call's key must be the produced one.
func CheckOrder(calls []Call, o Ordering, keys map[PO]string) OrderReport {
	rep := OrderReport{Calls: len(calls)}
	calls = slices.Clone(calls)
	slices.SortFunc(calls, func(a, b Call) int { return cmp.Compare(a.Start, b.Start) })
	type group struct {
		p   int32
		key string
	}
	type state struct {
		last   Call
		maxEnd int64
		any    bool
	}
	groups := map[group]*state{}
	parts := map[int32]int64{}   // partition -> max end so far
	keyless := map[int32]int64{} // partition -> max end of keyless calls so far
	for _, c := range calls {
		if keys != nil {
			if want, ok := keys[PO{c.P, c.O}]; !ok || want != c.Key {
				rep.Violations = append(rep.Violations, fmt.Sprintf("partition %d offset %d: handled with key %q, produced %q (produced: %v)", c.P, c.O, c.Key, want, ok))
			}
		}
		if c.Start < parts[c.P] {
			rep.PartitionOverlaps++
		}
		parts[c.P] = max(parts[c.P], c.End)
		if c.Key == "" {
			if c.Start < keyless[c.P] {
				rep.KeylessOverlaps++
			}
			keyless[c.P] = max(keyless[c.P], c.End)
		}
		var g group
		switch {
		case o.Mode == ByPartition:
			g = group{p: c.P}
		case o.Mode == ByKey && (c.Key != "" || o.KeylessOrdered):
			g = group{c.P, c.Key}
		default:
			continue
		}
		s := groups[g]
		if s == nil {
			s = &state{}
			groups[g] = s
		}
		if s.any {
			name := fmt.Sprintf("partition %d key %q", c.P, g.key)
			if o.Mode == ByPartition {
				name = fmt.Sprintf("partition %d", c.P)
			}
			if c.Start < s.maxEnd {
				rep.Violations = append(rep.Violations, fmt.Sprintf("%s: offset %d (%s) started at %d while offset %d (%s) ran until %d",
					name, c.O, c.Member, c.Start, s.last.O, s.last.Member, s.maxEnd))
			}
			if c.Member != s.last.Member {
				rep.Handovers++
			}
			switch {
			case c.O > s.last.O:
			case c.Member != s.last.Member:
				rep.Rewinds++
			default:
				rep.Violations = append(rep.Violations, fmt.Sprintf("%s: %s started offset %d after offset %d",
					name, c.Member, c.O, s.last.O))
			}
		}
		s.last, s.any = c, true
		s.maxEnd = max(s.maxEnd, c.End)
	}
	return rep
}

// Check fails the test for each violation (the first ten are listed).
func (r OrderReport) Check(tb testing.TB) {
	tb.Helper()
	if len(r.Violations) > 0 {
		tb.Errorf("%d ordering violations in %d calls, for example:\n%s", len(r.Violations), r.Calls, joinLines(r.Violations[:min(10, len(r.Violations))]))
	}
}

func joinLines(s []string) string {
	out := ""
	for _, l := range s {
		out += "  " + l + "\n"
	}
	return out
}

// checkAllHandled fails the test for each produced record never handled.
func (kt *KeyedTopic) checkAllHandled(tb testing.TB, handled func(PO) bool) {
	tb.Helper()
	var lost []string
	for po := range kt.Keys {
		if !handled(po) {
			lost = append(lost, fmt.Sprintf("%d/%d", po.P, po.O))
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		tb.Errorf("%d of %d messages never handled: %v", len(lost), len(kt.Keys), lost[:min(10, len(lost))])
	}
}

// handler returns the HandleFunc of member: it records the call in rec
// around a random sleep of 0-3ms.
func handler(rec *CallRecorder, member string) HandleFunc {
	return func(p int32, o int64, key []byte) {
		rec.Handle(member, p, o, key, func() { time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) })
	}
}

// Sizes of the ordering tests' topics.
const (
	orderPartitions = 4
	orderKeys       = 300
	orderMessages   = 4000
)

// RunOrderingModes runs RunOrdering, each as a subtest, for ByKey with
// keyless messages unordered, ByKey with KeylessOrdered, and ByPartition.
func RunOrderingModes(t *testing.T, start StartMember) {
	for _, o := range []Ordering{
		{Mode: ByKey},
		{Mode: ByKey, KeylessOrdered: true},
		{Mode: ByPartition},
	} {
		t.Run(fmt.Sprintf("%v/keyless-ordered=%v", o.Mode, o.KeylessOrdered), func(t *testing.T) {
			RunOrdering(t, start, o)
		})
	}
}

// RunOrdering produces a keyed topic, consumes it with one member of a new
// group configured with o until every message is handled and the commits
// reach the log end, stops it and checks the calls (CheckOrder), that
// every message was handled, and for ByKey that calls of a partition did
// overlap (and keyless ones too, unless KeylessOrdered).
func RunOrdering(t *testing.T, start StartMember, o Ordering) {
	const topic = "ordered"
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, orderPartitions))
	ctx := Timeout(t, 60*time.Second)
	kt := ProduceKeyedTopic(ctx, t, c, topic, orderPartitions, orderMessages, orderKeys)
	group := NextGroup("ordering")
	rec := NewCallRecorder()
	stop := start(t, c, group, topic, o, handler(rec, "A"))
	WaitFor(ctx, t, "every message handled", func() bool { return rec.Distinct() == len(kt.Keys) })
	WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := CommittedAtEnd(ctx, c, group, topic); return ok })
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	calls := rec.Calls()
	rep := CheckOrder(calls, o, kt.Keys)
	rep.Check(t)
	seen := map[PO]bool{}
	for _, c := range calls {
		seen[PO{c.P, c.O}] = true
	}
	kt.checkAllHandled(t, func(po PO) bool { return seen[po] })
	if rep.Rewinds != 0 {
		t.Errorf("%d rewinds with one member", rep.Rewinds)
	}
	if o.Mode == ByKey && rep.PartitionOverlaps == 0 {
		t.Error("ByKey: no two calls of one partition overlapped: keys were not handled concurrently")
	}
	if o.Mode == ByKey && !o.KeylessOrdered && rep.KeylessOverlaps == 0 {
		t.Error("ByKey without KeylessOrdered: no two keyless calls of one partition overlapped (runs of 10 were produced)")
	}
	t.Logf("%v keyless ordered %v: %d calls, %d overlapping calls within a partition, %d overlapping keyless calls",
		o.Mode, o.KeylessOrdered, rep.Calls, rep.PartitionOverlaps, rep.KeylessOverlaps)
}

// RunOrderingRebalance consumes a keyed topic ByKey with members joining
// and leaving one at a time (A; A+B; A+B+C; B+C; C), each change after a
// further sixth of the messages was handled, all members recording into one
// CallRecorder: per (partition, key) no two calls overlap, across members
// too, offsets start in order within each member's run, nothing is lost
// and the commits reach the log end.
func RunOrderingRebalance(t *testing.T, start StartMember) {
	const (
		topic      = "ordered-rb"
		partitions = 6
		n          = 6000
	)
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, partitions))
	ctx := Timeout(t, 90*time.Second)
	kt := ProduceKeyedTopic(ctx, t, c, topic, partitions, n, orderKeys)
	group := NextGroup("ordering-rb")
	o := Ordering{Mode: ByKey}
	rec := NewCallRecorder()
	watch := WatchCommits(ctx, t, c, group, topic, "")
	step, midStream := 0, 0
	progress := func() {
		t.Helper()
		step++
		WaitFor(ctx, t, fmt.Sprintf("%d/6 of the messages handled", step), func() bool { return rec.Distinct() >= step*n/6 })
		if rec.Distinct() < n {
			midStream++
		}
	}
	stopMember := func(name string, stop func() error) {
		t.Helper()
		if err := stop(); err != nil {
			t.Fatalf("member %s: %v", name, err)
		}
	}
	a := start(t, c, group, topic, o, handler(rec, "A"))
	progress()
	b := start(t, c, group, topic, o, handler(rec, "B"))
	progress()
	cm := start(t, c, group, topic, o, handler(rec, "C"))
	progress()
	stopMember("A", a)
	progress()
	stopMember("B", b)
	WaitFor(ctx, t, "every message handled", func() bool { return rec.Distinct() == n })
	WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := CommittedAtEnd(ctx, c, group, topic); return ok })
	stopMember("C", cm)
	if rw := watch.Stop(); len(rw) > 0 {
		t.Errorf("committed offsets went down: %v", rw)
	}
	calls := rec.Calls()
	rep := CheckOrder(calls, o, kt.Keys)
	rep.Check(t)
	seen := map[PO]bool{}
	members := map[string]int{}
	for _, c := range calls {
		seen[PO{c.P, c.O}] = true
		members[c.Member]++
	}
	kt.checkAllHandled(t, func(po PO) bool { return seen[po] })
	if len(members) < 3 {
		t.Errorf("calls per member %v: not every member handled messages", members)
	}
	if rep.Handovers == 0 {
		t.Error("no key moved from one member to another")
	}
	t.Logf("calls per member %v; %d keys handed over between members, %d redeliveries (rewinds at a member change), %d duplicates; %d changes mid-stream",
		members, rep.Handovers, rep.Rewinds, len(calls)-len(seen), midStream)
}

// CallLog is a crash child's record of its handler calls: it appends
// "child partition offset start end" to a shared file as each call ends
// (one O_APPEND write per line, which a SIGKILL cannot tear), start and
// end from the process's own sequence. Safe for concurrent use.
type CallLog struct {
	hl  *HandledLog
	seq atomic.Int64
}

// OpenCallLog opens (creates) the file at path for appending, for the
// child with index child (a number).
func OpenCallLog(path, child string) (*CallLog, error) {
	hl, err := OpenHandledLog(path, child)
	if err != nil {
		return nil, err
	}
	return &CallLog{hl: hl}, nil
}

// Handle takes a start number, runs work, takes an end number and appends
// the call's line.
func (l *CallLog) Handle(p int32, o int64, work func()) error {
	start := l.seq.Add(1)
	work()
	end := l.seq.Add(1)
	line := l.hl.child + " " + strconv.Itoa(int(p)) + " " + strconv.FormatInt(o, 10) + " " +
		strconv.FormatInt(start, 10) + " " + strconv.FormatInt(end, 10) + "\n"
	l.hl.mu.Lock()
	_, err := l.hl.f.WriteString(line)
	l.hl.mu.Unlock()
	return err
}

// Close closes the file.
func (l *CallLog) Close() error { return l.hl.Close() }

// ReadCalls reads a CallLog file; a call's Member is its child index and its
// Key is taken from keys. A malformed line fails the test.
func ReadCalls(tb testing.TB, path string, keys map[PO]string) []Call {
	tb.Helper()
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	var calls []Call
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var c Call
		if _, err := fmt.Sscan(sc.Text(), &c.Member, &c.P, &c.O, &c.Start, &c.End); err != nil {
			tb.Fatalf("bad line %q: %v", sc.Text(), err)
		}
		c.Key = keys[PO{c.P, c.O}]
		calls = append(calls, c)
	}
	if err := sc.Err(); err != nil {
		tb.Fatal(err)
	}
	return calls
}

// OrderCrashChild is the child side of RunOrderingCrash: it opens the
// CallLog at out as child idx and runs run with a HandleFunc that records
// each call around a random sleep of 0-3ms (some calls 50ms: they hold the
// commit point); it prints "handling" once the first call ended (the
// parent kills it only after that: see the embedded broker's ghost-member
// bug in DESIGN.md). It returns the process exit code: 0 if run returned
// nil.
func OrderCrashChild(out, idx string, run func(h HandleFunc) error) int {
	cl, err := OpenCallLog(out, idx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer cl.Close()
	var first sync.Once
	err = run(func(p int32, o int64, _ []byte) {
		err := cl.Handle(p, o, func() {
			d := time.Duration(rand.IntN(3000)) * time.Microsecond
			if rand.IntN(200) == 0 {
				d = 50 * time.Millisecond
			}
			time.Sleep(d)
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "write:", err)
		}
		first.Do(func() { fmt.Println("handling") })
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "Run:", err)
		return 1
	}
	return 0
}

// RunOrderingCrash produces a keyed topic and consumes it ByKey in child
// processes (startChild(i, brokers, out) starts child i, which runs
// OrderCrashChild with out and i; the child consumes topic in group ByKey
// with the keyless messages ordered as one key): each of
// kills children is SIGKILLed a random moment after it handled its first
// message, and a last one runs until the commits reach the log end and
// exits on SIGINT. Then per child lifetime no two calls of a key overlap
// and a key's calls start in offset order; each child's calls of a key are
// the first of that key's offsets the commits did not cover when it
// started (it restarts from the commit point and skips nothing); nothing is
// lost; commits never go down.
//
// It runs twice, as subtests: with the keyless records ordered as one key
// (KeylessOrdered) and unordered. startChild must pass env, a NAME=value
// setting, to the child, whose consumer takes its Ordering from
// CrashChildOrdering.
func RunOrderingCrash(t *testing.T, topic, group string, kills int, startChild func(i int, brokers, out, env string) (*exec.Cmd, *bufio.Reader)) {
	for _, keylessOrdered := range []bool{true, false} {
		t.Run(fmt.Sprintf("keyless-ordered=%v", keylessOrdered), func(t *testing.T) {
			env := envKeylessOrdered + "=" + strconv.FormatBool(keylessOrdered)
			runOrderingCrash(t, topic, group, kills, Ordering{Mode: ByKey, KeylessOrdered: keylessOrdered},
				func(i int, brokers, out string) (*exec.Cmd, *bufio.Reader) { return startChild(i, brokers, out, env) })
		})
	}
}

// envKeylessOrdered carries a crash child's KeylessOrdered (see
// RunOrderingCrash and CrashChildOrdering).
const envKeylessOrdered = "INORDER_ORDER_KEYLESS_ORDERED"

// CrashChildOrdering is the Ordering a child of RunOrderingCrash consumes
// with: ByKey, the keyless records ordered as one key or not as its parent
// chose.
func CrashChildOrdering() Ordering {
	return Ordering{Mode: ByKey, KeylessOrdered: os.Getenv(envKeylessOrdered) == "true"}
}

func runOrderingCrash(t *testing.T, topic, group string, kills int, o Ordering, startChild func(i int, brokers, out string) (*exec.Cmd, *bufio.Reader)) {
	const partitions = 4
	c := kafkatest.Start(t, kafkatest.WithTopic(topic, partitions))
	ctx := Timeout(t, 120*time.Second)
	kt := ProduceKeyedTopic(ctx, t, c, topic, partitions, 3*orderMessages, orderKeys)
	out := t.TempDir() + "/calls.txt"
	watch := WatchCommits(ctx, t, c, group, topic, "")
	covAtStart := make([]Coverage, kills+1)
	waitLine := func(r *bufio.Reader, want string) {
		t.Helper()
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("child ended before printing %q: %v", want, err)
			}
			if line == want+"\n" {
				return
			}
		}
	}
	for i := range kills {
		covAtStart[i] = ReadCoverage(ctx, t, c, group, topic)
		cmd, r := startChild(i, c.Addrs()[0], out)
		waitLine(r, "handling")
		time.Sleep(time.Duration(rand.IntN(400)) * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
	}
	covAtStart[kills] = ReadCoverage(ctx, t, c, group, topic)
	last, r := startChild(kills, c.Addrs()[0], out)
	go func() { _, _ = bufio.NewReader(r).WriteTo(discard{}) }() // never block its stdout
	WaitFor(ctx, t, "the last child to commit everything", func() bool { ok, _ := CommittedAtEnd(ctx, c, group, topic); return ok })
	_ = last.Process.Signal(os.Interrupt)
	if err := last.Wait(); err != nil {
		t.Fatalf("last child: %v", err)
	}
	if rw := watch.Stop(); len(rw) > 0 {
		t.Errorf("committed offsets went down: %v", rw)
	}

	calls := ReadCalls(t, out, kt.Keys)
	perChild := map[string][]Call{}
	seen := map[PO]bool{}
	for _, c := range calls {
		perChild[c.Member] = append(perChild[c.Member], c)
		seen[PO{c.P, c.O}] = true
	}
	kt.checkAllHandled(t, func(po PO) bool { return seen[po] })
	counts := make([]int, kills+1)
	keylessOverlaps := 0
	for i := range kills + 1 {
		cs := perChild[strconv.Itoa(i)]
		counts[i] = len(cs)
		rep := CheckOrder(cs, o, nil) // one sequence per process: check each alone
		rep.Check(t)
		keylessOverlaps += rep.KeylessOverlaps
		if rep.Rewinds != 0 {
			t.Errorf("child %d: %d rewinds", i, rep.Rewinds)
		}
		if bad := CheckRestart(cs, kt.Keys, covAtStart[i].Has, o.KeylessOrdered); len(bad) > 0 {
			t.Errorf("child %d: %d calls not at their key's next offset the commits did not cover, for example:\n%s",
				i, len(bad), joinLines(bad[:min(10, len(bad))]))
		}
	}
	if !o.KeylessOrdered && keylessOverlaps == 0 {
		t.Error("without KeylessOrdered no two keyless calls of one partition overlapped (runs of 10 were produced): did the children get the ordering?")
	}
	t.Logf("calls per child %v; %d distinct of %d; %d redelivered; %d keyless overlaps", counts, len(seen), len(kt.Keys), len(calls)-len(seen), keylessOverlaps)
}

// CheckRestart checks the calls of one process lifetime that started after
// commits covering what covered reports (keys: the produced key of every
// offset; keyless records are one key): the calls of each (partition, key),
// in start order, must be the first of that key's offsets not covered, in
// offset order, without a gap — a key restarts at its commit point and
// skips nothing. It returns one line per call that is not.
//
// Without keylessOrdered the keyless records are not ordered: each of
// their calls must be of an offset not covered, at most once (a restart
// skips nothing covered and redelivers nothing covered), in any order.
func CheckRestart(calls []Call, keys map[PO]string, covered func(p int32, o int64) bool, keylessOrdered bool) []string {
	type pk struct {
		p   int32
		key string
	}
	uncovered := map[pk][]int64{}
	for po, k := range keys {
		if !covered(po.P, po.O) {
			uncovered[pk{po.P, k}] = append(uncovered[pk{po.P, k}], po.O)
		}
	}
	for _, offs := range uncovered {
		slices.Sort(offs)
	}
	calls = slices.Clone(calls)
	slices.SortFunc(calls, func(a, b Call) int { return cmp.Compare(a.Start, b.Start) })
	next := map[pk]int{} // index into the key's uncovered offsets
	var bad []string
	keyless := map[PO]bool{} // unordered keyless offsets called
	for _, c := range calls {
		if c.Key == "" && !keylessOrdered {
			po := PO{c.P, c.O}
			switch {
			case covered(c.P, c.O):
				bad = append(bad, fmt.Sprintf("%s partition %d keyless offset %d: covered by the commit at the start", c.Member, c.P, c.O))
			case keyless[po]:
				bad = append(bad, fmt.Sprintf("%s partition %d keyless offset %d: handled twice", c.Member, c.P, c.O))
			}
			keyless[po] = true
			continue
		}
		k := pk{c.P, c.Key}
		offs, j := uncovered[k], next[k]
		if j >= len(offs) || offs[j] != c.O {
			want := "none left"
			if j < len(offs) {
				want = strconv.FormatInt(offs[j], 10)
			}
			bad = append(bad, fmt.Sprintf("%s partition %d key %q: handled offset %d, next uncovered %s", c.Member, c.P, c.Key, c.O, want))
		}
		next[k] = j + 1
	}
	return bad
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
