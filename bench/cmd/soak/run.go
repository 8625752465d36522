package main

// This file runs the soak: broker, producer, members, churn, faults, the
// samples every 10 s and the verdict.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/brokerfault"
	"github.com/inorder/inorder/internal/kafkatest/churn"
)

const (
	topic      = "soak"
	group      = "soak-group"
	partitions = 4
	members    = 3
	every      = 10 * time.Second
	lagWithin  = 30 * time.Second // lag back to 0 this long after the last fault
)

// opts are the command's settings.
type opts struct {
	adapter                   string
	duration, quiet, baseline time.Duration
	rate, keys                int
	keep, verbose             bool
	heapProfile               bool
}

// proc is one member process. Its fields are the run loop's.
type proc struct {
	index    int
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	gone     atomic.Bool
	stopping bool
	killed   bool
	frozen   time.Time
	thawed   churn.ThawGuard // no kill after a resume until it rejoined
}

// verdict is a soak's outcome.
type verdict int

const (
	verdictPass      verdict = iota
	verdictFail              // the adapter misbehaved (or could not be measured)
	verdictBrokerBug         // no adapter failure, but the broker's stuck group excuses or hides one
)

// minAfterCatchUp is the least time after the last stuck episode's
// catch-up that can clear an RSS growth as the heap kept after its backlog.
const minAfterCatchUp = 2 * time.Minute

// run runs the soak and returns its verdict; the error is for a soak that
// could not be carried out.
func run(ctx context.Context, o opts) (verdict, error) {
	k := -1
	for i, kd := range kinds {
		if kd.name == o.adapter {
			k = i
		}
	}
	switch {
	case k < 0:
		return verdictFail, fmt.Errorf("-adapter %q: unknown (known: kafkago, confluent-eager, confluent-cooperative, franz-eager, franz-cooperative)", o.adapter)
	case o.rate < 1 || o.keys < 0:
		return verdictFail, fmt.Errorf("-rate %d, -keys %d: want rate >= 1, keys >= 0", o.rate, o.keys)
	case o.duration <= 0 || o.quiet < lagWithin || o.quiet >= o.duration || o.baseline <= 0 || o.baseline >= o.duration-o.quiet:
		return verdictFail, fmt.Errorf("-duration %v, -quiet %v, -baseline %v: want quiet >= %v, baseline < duration - quiet", o.duration, o.quiet, o.baseline, lagWithin)
	}
	exe, err := os.Executable()
	if err != nil {
		return verdictFail, err
	}
	dir, err := os.MkdirTemp("", "soak-"+o.adapter+"-")
	if err != nil {
		return verdictFail, err
	}
	logf := func(string, ...any) {}
	if o.verbose {
		logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "  "+format+"\n", args...) }
	}
	c, err := kafkatest.New(kafkatest.WithTopic(topic, partitions), kafkatest.WithBrokers(3))
	if err != nil {
		return verdictFail, err
	}
	defer c.Close()
	out := filepath.Join(dir, "handled.txt")
	base := churn.DefaultConfig()
	fmt.Printf("soak: %s, %s for %v (churn and faults until %v), %d msg/s, %d partitions, 3 brokers, %d members (member 0 observed, never killed or frozen; the others killed or stopped every 20-40s), broker faults every 1-2.5s, handlers 10-30ms, 16 workers per member; files in %s\n",
		time.Now().UTC().Format(time.RFC3339), o.adapter, o.duration, o.duration-o.quiet, o.rate, partitions, members, dir)

	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Second) }
	var procs []*proc
	spawn := func() error {
		i := len(procs)
		env, err := churn.MemberEnv(churn.MemberSpec{
			Index: i, Adapter: o.adapter, Brokers: c.Addrs(), Group: group, Topic: topic, Out: out,
			Protocol: kinds[k].protocol, ByKey: o.keys > 0,
			SessionTimeout: base.SessionTimeout, RebalanceTimeout: base.RebalanceTimeout,
			RevokeTimeout: base.RevokeTimeout, HeartbeatInterval: base.HeartbeatInterval,
			Concurrency: base.Concurrency, HandlerMin: base.HandlerMin, HandlerMax: base.HandlerMax,
		})
		if err != nil {
			return err
		}
		logFile, err := os.Create(filepath.Join(dir, fmt.Sprintf("member-%d.log", i)))
		if err != nil {
			return err
		}
		cmd := exec.Command(exe, "-member="+o.adapter)
		cmd.Env = append(os.Environ(), env)
		if o.heapProfile && i == 0 {
			cmd.Env = append(cmd.Env, heapProfileEnv+"="+filepath.Join(dir, "heap-0"))
		}
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return fmt.Errorf("start member %d: %w", i, err)
		}
		p := &proc{index: i, cmd: cmd, exited: make(chan struct{})}
		go func() {
			p.exitErr = cmd.Wait()
			logFile.Close()
			p.gone.Store(true)
			close(p.exited)
		}()
		procs = append(procs, p)
		logf("%v member %d started (pid %d)", since(), i, cmd.Process.Pid)
		return nil
	}
	defer func() {
		for _, p := range procs {
			if !p.gone.Load() {
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
	}()

	// The producer: rate messages a second, in tenths.
	pctx, stopProducing := context.WithCancel(ctx)
	var produced atomic.Int64
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopProducing()
	wg.Go(func() { produce(pctx, c, o, &produced, logf) })

	for range members {
		if err := spawn(); err != nil {
			return verdictFail, err
		}
	}

	// Faults until the quiet part; freezes are served by the loop below.
	type freezeReq struct {
		d     time.Duration
		reply chan bool
	}
	freezes := make(chan freezeReq)
	var faults atomic.Int64
	churnEnd := start.Add(o.duration - o.quiet)
	fctx, stopFaults := context.WithCancel(ctx)
	faultsDone := make(chan struct{})
	go func() {
		defer close(faultsDone)
		err := brokerfault.Run(fctx, c.Fake(), brokerfault.Config{
			Topic: topic, Partitions: partitions, Duration: o.duration - o.quiet,
			FreezeMin: base.SessionTimeout + time.Second, FreezeMax: base.SessionTimeout + 2*time.Second,
		}, brokerfault.Hooks{
			Begin: func(kind string) func() {
				faults.Add(1)
				logf("%v fault %s", since(), kind)
				return func() {}
			},
			Freeze: func(d time.Duration) bool {
				r := freezeReq{d, make(chan bool, 1)}
				select {
				case freezes <- r:
					return <-r.reply
				case <-fctx.Done():
					return false
				}
			},
			Logf: logf,
		})
		if err != nil {
			fmt.Fprintln(os.Stderr, "soak:", err)
		}
	}()
	defer func() {
		stopFaults()
		<-faultsDone
	}()

	var samples []sample
	var handled *handledSet
	kills, terms, frozen := 0, 0, 0
	// After the churn and the faults (the last frozen member resumed, the
	// last held fault lifted) the log end is the target the commits must
	// reach within lagWithin: the backlog the faults left is consumed.
	lastFault := time.Time{}
	var target map[int32]int64
	lagZeroAt := time.Time{}
	nextLagCheck := time.Time{}
	nextKill := start.Add(randDur(20*time.Second, 40*time.Second))
	nextSample := start.Add(every)
	end := start.Add(o.duration)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	// The group's state, read every tick: a classic group PreparingRebalance
	// at one generation for StuckAfter is the embedded broker's stuck group
	// (churn.StuckWatch), reported apart.
	stuck := churn.StuckWatch{After: base.StuckAfter}
	groupState, generation, preparingFor := "?", int32(0), time.Duration(0)
	fmt.Println("| time | RSS (MiB) | Go heap in use / mapped by the Go runtime (MiB) | goroutines | open connections | lag | produced | handled | faults | kills+terms | freezes | group (generation) |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|---|---|")
	handled = newHandledSet(out)
loop:
	for {
		select {
		case <-ctx.Done():
			return verdictFail, ctx.Err()
		case r := <-freezes:
			var eligible []*proc
			for _, p := range procs[1:] {
				if !p.gone.Load() && !p.stopping && p.frozen.IsZero() && handled.byMember(p.index) > 0 {
					eligible = append(eligible, p)
				}
			}
			if len(eligible) == 0 {
				r.reply <- false
				continue
			}
			p := eligible[rand.IntN(len(eligible))]
			_ = p.cmd.Process.Signal(syscall.SIGSTOP)
			p.frozen = time.Now().Add(r.d)
			frozen++
			logf("%v member %d frozen for %v", since(), p.index, r.d)
			r.reply <- true
			continue
		case <-tick.C:
		}
		now := time.Now()
		anyFrozen := false
		for _, p := range procs {
			if !p.frozen.IsZero() && now.After(p.frozen) {
				_ = p.cmd.Process.Signal(syscall.SIGCONT)
				p.frozen = time.Time{}
				p.thawed.Thawed(now, base.SessionTimeout+base.RebalanceTimeout)
				logf("%v member %d resumed", since(), p.index)
			}
			anyFrozen = anyFrozen || !p.frozen.IsZero()
		}
		if err := handled.read(); err != nil {
			return verdictFail, err
		}
		if gi := c.Fake().GroupInfo(group); gi != nil {
			groupState, generation = gi.State, gi.Epoch
			preparingFor = stuck.Observe(now, gi.State, gi.Epoch)
		}
		mayKill := map[*proc]bool{}
		for _, p := range procs {
			mayKill[p] = p.thawed.Clear(now, handled.byMember(p.index))
		}
		faultsOver := false
		select {
		case <-faultsDone:
			faultsOver = true
		default:
		}
		if lastFault.IsZero() && now.After(churnEnd) && faultsOver && !anyFrozen {
			lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			ends, err := c.LogEnd(lctx, topic)
			cancel()
			if err == nil {
				lastFault, target = now, ends
				logf("%v faults over; log end %v", since(), ends)
			}
		}
		if target != nil && lagZeroAt.IsZero() && now.After(nextLagCheck) {
			nextLagCheck = now.Add(time.Second)
			if gi := c.Fake().GroupInfo(group); gi != nil {
				caught := true
				for p, e := range target {
					caught = caught && gi.Commits[topic][p].Offset >= e
				}
				if caught {
					lagZeroAt = now
				}
			}
		}
		for _, p := range procs {
			if p.gone.Load() && !p.stopping {
				return verdictFail, fmt.Errorf("member %d exited on its own: %v (log %s)", p.index, p.exitErr,
					filepath.Join(dir, fmt.Sprintf("member-%d.log", p.index)))
			}
		}
		if now.Before(churnEnd) && now.After(nextKill) {
			var eligible []*proc
			for _, p := range procs[1:] {
				// Killed in its first join, or in its rejoin after a freeze
				// (under a new member id), a member can become a ghost of
				// the embedded broker (churn.ThawGuard).
				if !p.gone.Load() && !p.stopping && p.frozen.IsZero() && mayKill[p] && handled.byMember(p.index) > 0 {
					eligible = append(eligible, p)
				}
			}
			if len(eligible) > 0 {
				p := eligible[rand.IntN(len(eligible))]
				p.stopping = true
				if rand.IntN(2) == 0 {
					p.killed = true
					kills++
					_ = p.cmd.Process.Signal(syscall.SIGKILL)
					logf("%v member %d SIGKILLed", since(), p.index)
				} else {
					terms++
					_ = p.cmd.Process.Signal(syscall.SIGTERM)
					logf("%v member %d SIGTERMed", since(), p.index)
				}
				if err := spawn(); err != nil {
					return verdictFail, err
				}
				nextKill = now.Add(randDur(20*time.Second, 40*time.Second))
			}
		}
		if now.After(nextSample) || now.After(end) {
			nextSample = nextSample.Add(every)
			s := measure(ctx, c, procs[0], statsPath(out, 0), time.Since(start).Round(time.Second))
			samples = append(samples, s)
			g := fmt.Sprintf("%s %d", groupState, generation)
			if preparingFor >= stuck.After {
				g += fmt.Sprintf(" for %v: stuck", preparingFor.Round(time.Second))
			}
			fmt.Printf("| %v | %s | %s / %s | %s | %s | %s | %d | %d | %d | %d | %d | %s |\n", s.at, kib(s.rssKiB), kib(s.heapKiB), kib(s.goKiB), num(int64(s.goroutines)),
				num(int64(s.conns)), num(s.lag), produced.Load(), handled.lines, faults.Load(), kills+terms, frozen, g)
		}
		if now.After(end) {
			break loop
		}
	}
	stopProducing()
	stopFaults()
	<-faultsDone

	// The verdict.
	ok, bug := true, false
	fail := func(format string, args ...any) {
		ok = false
		fmt.Printf("FAIL: "+format+"\n", args...)
	}
	brokerBugf := func(format string, args ...any) {
		bug = true
		fmt.Printf("BROKER BUG: "+format+"\n", args...)
	}
	eps := placeEpisodes(stuck.Episodes(), start, samples, o.rate)
	fmt.Printf("\ngroup stuck (the embedded broker's bug: PreparingRebalance at one generation for %v or more): %d episodes\n", stuck.After, len(eps))
	for _, e := range eps {
		fmt.Println("  " + e.String())
	}
	var b, last sample
	for _, s := range samples {
		if s.at <= o.baseline {
			b = s
		}
		last = s
	}
	fmt.Printf("\nobserved member after %v: RSS %s MiB (Go heap in use %s, mapped by the Go runtime %s), %d goroutines, %d connections; at the end (%v): RSS %s MiB (Go heap in use %s, mapped by the Go runtime %s), %d goroutines, %d connections\n",
		b.at, kib(b.rssKiB), kib(b.heapKiB), kib(b.goKiB), b.goroutines, b.conns, last.at, kib(last.rssKiB), kib(last.heapKiB), kib(last.goKiB), last.goroutines, last.conns)
	switch {
	case b.rssKiB <= 0 || last.rssKiB <= 0 || b.goroutines < 0 || last.goroutines < 0:
		fail("the observed member could not be measured (RSS %d/%d KiB, goroutines %d/%d)", b.rssKiB, last.rssKiB, b.goroutines, last.goroutines)
	default:
		if len(eps) > 0 {
			out, covered := outsideGrowth(samples, b.at, eps)
			fmt.Printf("RSS outside the stuck episodes (each from its start to its catch-up): %+.0f%% over %v of the %v from %v", 100*(out-1), covered, last.at-b.at, b.at)
			if l := eps[len(eps)-1]; l.caughtUp >= 0 {
				for _, s := range samples {
					if s.at == l.caughtUp {
						fmt.Printf("; after the last catch-up (%v, %s MiB) to the end: %+.0f%% over %v", s.at, kib(s.rssKiB), 100*(float64(last.rssKiB)/float64(s.rssKiB)-1), last.at-s.at)
					}
				}
			}
			fmt.Println()
		}
		switch v, msg := judgeRSS(samples, b, last, eps); v {
		case verdictFail:
			fail("%s", msg)
		case verdictBrokerBug:
			brokerBugf("%s", msg)
		}
		if float64(last.goroutines) > 1.1*float64(b.goroutines) {
			fail("goroutines grew from %d to %d", b.goroutines, last.goroutines)
		}
		if last.conns > b.conns+2 {
			fail("open connections grew from %d to %d", b.conns, last.conns)
		}
	}
	switch {
	case lastFault.IsZero():
		fail("the faults did not end before the soak did")
	case (lagZeroAt.IsZero() || lagZeroAt.Sub(lastFault) > lagWithin) && stuckBetween(eps, lastFault.Sub(start), lastFault.Sub(start)+lagWithin):
		brokerBugf("the lag at the last fault (%v) was not consumed within %v while the group was stuck", lastFault.Sub(start).Round(time.Second), lagWithin)
	case lagZeroAt.IsZero() || lagZeroAt.Sub(lastFault) > lagWithin:
		fail("the lag at the last fault (%v) was not consumed within %v (commits reached that log end: %v)", lastFault.Sub(start).Round(time.Second),
			lagWithin, map[bool]any{true: "never", false: lagZeroAt.Sub(start).Round(time.Second)}[lagZeroAt.IsZero()])
	default:
		fmt.Printf("the lag at the last fault (%v) was consumed %v later (with the produce rate going on)\n",
			lastFault.Sub(start).Round(time.Second), lagZeroAt.Sub(lastFault).Round(100*time.Millisecond))
	}

	// The clean stop, then loss against the final commits.
	for _, p := range procs {
		if !p.gone.Load() && !p.killed {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		select {
		case <-p.exited:
		case <-time.After(base.RevokeTimeout + 20*time.Second):
			fail("member %d still running %v after SIGTERM", p.index, base.RevokeTimeout+20*time.Second)
			_ = p.cmd.Process.Kill()
			<-p.exited
			continue
		}
		if !p.killed && p.exitErr != nil {
			fail("member %d: %v (log %s)", p.index, p.exitErr, filepath.Join(dir, fmt.Sprintf("member-%d.log", p.index)))
		}
	}
	if err := handled.read(); err != nil {
		return verdictFail, err
	}
	gi := c.Fake().GroupInfo(group)
	if gi == nil {
		fail("group %s unknown to the broker", group)
	} else {
		lost := 0
		for p, cm := range gi.Commits[topic] {
			lost += handled.missing(p, cm.Offset)
		}
		dups := handled.lines - handled.distinct()
		fmt.Printf("produced %d, handled %d (%d duplicates), lost %d; %d faults, %d kills, %d terms, %d freezes\n",
			produced.Load(), handled.lines, dups, lost, faults.Load(), kills, terms, frozen)
		if lost > 0 {
			fail("%d messages below the final commit never handled", lost)
		}
	}
	switch {
	case !ok:
		fmt.Println("FAIL; files:", dir)
		return verdictFail, nil
	case bug:
		fmt.Println("BROKER BUG (no adapter failure; the embedded broker's stuck group excuses or hides one, see above); files:", dir)
		return verdictBrokerBug, nil
	}
	fmt.Println("PASS")
	if !o.keep {
		os.RemoveAll(dir)
	}
	return verdictPass, nil
}

// stuckBetween reports whether an episode overlaps from..to.
func stuckBetween(eps []episode, from, to time.Duration) bool {
	for _, e := range eps {
		if e.start < to && (e.ongoing || e.end > from) {
			return true
		}
	}
	return false
}

// produce writes o.rate messages a second (a tenth every 100 ms, catching
// up after a slow produce) until ctx ends.
func produce(ctx context.Context, c *kafkatest.Cluster, o opts, produced *atomic.Int64, logf func(string, ...any)) {
	start := time.Now()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	next := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		due := int(time.Since(start).Seconds()*float64(o.rate)) - next
		if due <= 0 {
			continue
		}
		var err error
		if o.keys == 0 {
			_, err = c.Produce(ctx, topic, due, kafkatest.FirstIndex(next))
		} else {
			recs := make([]kafkatest.KeyedRecord, due)
			for i := range recs {
				key := (next + i) % o.keys
				recs[i] = kafkatest.KeyedRecord{Partition: int32(key % partitions),
					Key: fmt.Appendf(nil, "k%d", key), Value: fmt.Appendf(nil, "m%d", next+i)}
			}
			_, err = c.ProduceKeyed(ctx, topic, recs)
		}
		if err != nil && ctx.Err() == nil {
			logf("produce: %v", err)
		}
		next += due
		produced.Store(int64(next))
	}
}

// measure samples the observed member and the group's lag.
func measure(ctx context.Context, c *kafkatest.Cluster, p *proc, stats string, at time.Duration) sample {
	s := sample{at: at, rssKiB: -1, goroutines: -1, heapKiB: -1, goKiB: -1, conns: -1, lag: -1}
	if !p.gone.Load() {
		s.rssKiB = rss(p.cmd.Process.Pid)
		s.conns = sockets(p.cmd.Process.Pid)
		s.goroutines, s.heapKiB, s.goKiB = readStats(stats)
	}
	lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ends, err := c.LogEnd(lctx, topic)
	gi := c.Fake().GroupInfo(group)
	if err == nil && gi != nil {
		s.lag = 0
		for p, e := range ends {
			s.lag += e - gi.Commits[topic][p].Offset
		}
	}
	return s
}

func kib(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprintf("%.1f", float64(n)/1024)
}

func num(n int64) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}

func randDur(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

// handledSet reads the members' shared handled file as it grows ("member
// partition offset" lines).
type handledSet struct {
	path    string
	pos     int64
	partial []byte
	seen    map[int32]map[int64]bool
	members map[int]int
	lines   int
}

func newHandledSet(path string) *handledSet {
	return &handledSet{path: path, seen: map[int32]map[int64]bool{}, members: map[int]int{}}
}

func (h *handledSet) read() error {
	f, err := os.Open(h.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(h.pos, 0); err != nil {
		return err
	}
	sc := bufio.NewReader(f)
	for {
		l, err := sc.ReadBytes('\n')
		h.pos += int64(len(l))
		if err != nil {
			h.partial = append(h.partial, l...)
			return nil
		}
		l = append(h.partial, l...)
		h.partial = nil
		var m int
		var p int32
		var o int64
		if _, err := fmt.Sscan(string(l), &m, &p, &o); err != nil {
			return fmt.Errorf("bad handled line %q: %w", l, err)
		}
		if h.seen[p] == nil {
			h.seen[p] = map[int64]bool{}
		}
		h.seen[p][o] = true
		h.members[m]++
		h.lines++
	}
}

func (h *handledSet) byMember(m int) int { return h.members[m] }

func (h *handledSet) distinct() int {
	n := 0
	for _, s := range h.seen {
		n += len(s)
	}
	return n
}

// missing returns the offsets of p below commit never handled.
func (h *handledSet) missing(p int32, commit int64) int {
	n := 0
	for o := range commit {
		if !h.seen[p][o] {
			n++
		}
	}
	return n
}
