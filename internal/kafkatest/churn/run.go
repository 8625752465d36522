package churn

// This file runs one scenario: broker, topic, member processes, the churn,
// the clean stop and the verdict.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

const (
	topic = "churn"
	group = "churn-group"
	// readLag is how late the parent may see a handling: its reads of the
	// handled file are a tick (50ms) apart.
	readLag = 100 * time.Millisecond
)

// Result is the verdict of one run. Every list holds one line per finding.
type Result struct {
	Adapter, Protocol string
	Kills, Terms      int // members SIGKILLed and SIGTERMed during the churn
	Started           int // member processes started
	Handled           int // handlings, duplicates included
	// Duplicates counts the handlings of an offset beyond its first.
	Duplicates int
	// Lost counts the offsets below the group's final commit that were
	// never handled: the group moved past them. (Unhandled offsets at or
	// above the final commit are not lost, a later consumer would get them;
	// they show as a short final commit and, if nothing moved, a stall.)
	Lost    int
	LostAt  []string
	Rewinds []string // a committed offset went down
	Stalls  []string // a partition made no progress for StallAfter
	Short   []string // a final commit below the log end
	Ghosts  []string // the broker kept a dead member (not the adapter's fault)
	// Stuck: the broker held the group in PreparingRebalance past its
	// rebalance timeout (not the adapter's fault; see StuckAfter).
	Stuck  []string
	Hung   []string // a member did not exit after SIGTERM
	Failed []string // a member exited non-zero after SIGTERM
	// Aborted says why the run ended before the clean stop ("ghost",
	// "stuck", "timeout"), or is empty. Lost and Short are not judged for an aborted
	// run. (A stall does not abort: the stalled partition counts as settled
	// and the run goes on to the clean stop.)
	Aborted string
	// Events lists every disturbance (member started, killed, stopped,
	// frozen; broker faults) with its duplicates and their bound; see
	// Event.
	Events   []Event
	Freezes  int           // members frozen (SIGSTOP) by Chaos
	Duration time.Duration // from the first member's start to the last's exit
	// Extra holds the findings of Config.Check, by name; the scenario
	// that set Check judges them (OK does not).
	Extra map[string]int
	// Unowned is the partition-time without an owner (revoked and not yet
	// assigned, or held by a dead member) from the first assignment to the
	// clean stop, from the members' logs (unowned.go).
	Unowned time.Duration
	Dir     string // the run's files (handled file, member logs)
}

// Ghost reports whether the run hit the broker's ghost-member bug.
func (r Result) Ghost() bool { return len(r.Ghosts) > 0 }

// BrokerBug reports whether the run hit a known bug of the embedded
// broker: a ghost member or a group stuck in PreparingRebalance. Such a
// run says nothing about the adapter.
func (r Result) BrokerBug() bool { return len(r.Ghosts) > 0 || len(r.Stuck) > 0 }

// OK reports whether the run passed: no loss, rewind, stall, short final
// commit, hung or failed member, ghost, stuck group or timeout.
func (r Result) OK() bool {
	return r.Lost == 0 && len(r.Rewinds) == 0 && len(r.Stalls) == 0 && len(r.Short) == 0 &&
		!r.BrokerBug() && len(r.Hung) == 0 && len(r.Failed) == 0 && r.Aborted == ""
}

// Problems returns every finding of the run, one per line, at most max per
// kind (all if max <= 0).
func (r Result) Problems(limit int) []string {
	var out []string
	add := func(kind string, l []string) {
		if limit > 0 && len(l) > limit {
			l = append(l[:limit:limit], fmt.Sprintf("... %d more", len(l)-limit))
		}
		for _, s := range l {
			out = append(out, kind+": "+s)
		}
	}
	add("lost", r.LostAt)
	add("rewind", r.Rewinds)
	add("stall", r.Stalls)
	add("short", r.Short)
	add("ghost", r.Ghosts)
	add("stuck", r.Stuck)
	add("hung", r.Hung)
	add("failed", r.Failed)
	if r.Aborted != "" {
		out = append(out, "aborted: "+r.Aborted)
	}
	return out
}

// String summarises the run on one line.
func (r Result) String() string {
	return fmt.Sprintf("%s/%s: %d kills %d terms, %d started, %d handled (%d duplicates), lost %d, rewinds %d, stalls %d, short %d, ghosts %d, stuck %d, hung %d, failed %d, unowned %v, %v%s",
		r.Adapter, r.Protocol, r.Kills, r.Terms, r.Started, r.Handled, r.Duplicates, r.Lost, len(r.Rewinds), len(r.Stalls),
		len(r.Short), len(r.Ghosts), len(r.Stuck), len(r.Hung), len(r.Failed), r.Unowned.Round(100*time.Millisecond), r.Duration.Round(100*time.Millisecond),
		map[bool]string{true: ", aborted: " + r.Aborted, false: ""}[r.Aborted != ""])
}

// member is one member process as the parent sees it.
type member struct {
	index    int
	handling time.Time // when the run loop first saw a message it handled; written by the run loop only
	cmd      *exec.Cmd
	exited   chan struct{}
	exitErr  error
	stopping bool // SIGTERM or SIGKILL sent; written by the run loop only
	killed   bool
	frozen   time.Time // SIGSTOPped until then (zero: running); run loop only
	thawed   ThawGuard // no kill after a resume until it rejoined; run loop only
	gone     atomic.Bool
	exitAt   time.Time // set before exited is closed
}

// Run runs the scenario described by cfg and returns its verdict. It blocks
// until the run ends (at most cfg.Timeout plus the stop) or ctx ends. The
// error is for a run that could not be carried out (bad config, broker or
// process failure); adapter misbehaviour is in the Result.
func Run(ctx context.Context, cfg Config) (Result, error) {
	cfg.fill()
	if err := cfg.validate(); err != nil {
		return Result{}, err
	}
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	res := Result{Adapter: cfg.Adapter, Protocol: cfg.Protocol, Dir: cfg.Dir}

	copts := []kafkatest.Option{kafkatest.WithTopic(topic, cfg.Partitions), kafkatest.WithBrokers(cfg.Brokers)}
	if cfg.Protocol == "consumer" {
		copts = append(copts, kafkatest.WithConsumerGroupTimeouts(cfg.SessionTimeout, cfg.HeartbeatInterval))
	}
	c, err := kafkatest.New(copts...)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if err := produce(ctx, c, topic, cfg); err != nil {
		return res, err
	}
	ends, err := c.LogEnd(ctx, topic)
	if err != nil {
		return res, err
	}
	if cfg.Setup != nil {
		if err := cfg.Setup(ctx, c); err != nil {
			return res, fmt.Errorf("churn: setup: %w", err)
		}
	}
	out := filepath.Join(cfg.Dir, "handled.txt")
	h := newHandled(out, ends)

	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }
	w := startWatch(ctx, c.Fake(), group, topic, start)
	defer w.stop()
	// The group's history goes to group.log, for the evidence.
	defer func() {
		_ = os.WriteFile(filepath.Join(cfg.Dir, "group.log"), []byte(strings.Join(w.timelineLines(), "\n")+"\n"), 0o644)
	}()

	var members []*member
	live := func() []*member {
		var l []*member
		for _, m := range members {
			if !m.gone.Load() {
				l = append(l, m)
			}
		}
		return l
	}
	ev := events{grace: cfg.SessionTimeout}
	// bound is an event's duplicate bound now: done above the commit on
	// every partition, plus a call in flight on every handler goroutine.
	bound := func() int {
		v := w.view()
		n := 0
		for p := range ends {
			n += h.doneAbove(p, v.commits[p])
		}
		return n + cfg.Concurrency*len(live())
	}
	spawn := func() error {
		i := len(members)
		env, err := memberEnv(cfg.spec(i, c.Addrs(), group, topic, out))
		if err != nil {
			return err
		}
		logFile, err := os.Create(filepath.Join(cfg.Dir, fmt.Sprintf("member-%d.log", i)))
		if err != nil {
			return err
		}
		cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
		cmd.Env = append(os.Environ(), env)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return fmt.Errorf("%w: start member %d: %w", ErrMember, i, err)
		}
		m := &member{index: i, cmd: cmd, exited: make(chan struct{})}
		go func() {
			m.exitErr = cmd.Wait()
			m.exitAt = time.Now()
			logFile.Close()
			m.gone.Store(true)
			close(m.exited)
		}()
		members = append(members, m)
		res.Started++
		ev.begin("join", since(), bound())
		logf("%v member %d started (pid %d)", since(), i, cmd.Process.Pid)
		return nil
	}
	// Whatever happens, no member outlives the run.
	defer func() {
		for _, m := range members {
			if !m.gone.Load() {
				_ = m.cmd.Process.Kill()
				<-m.exited
			}
		}
	}()
	for range cfg.Members {
		if err := spawn(); err != nil {
			return res, err
		}
	}
	env, stopChaos := runChaos(ctx, &cfg, c)
	thaw := func(m *member) {
		_ = m.cmd.Process.Signal(syscall.SIGCONT)
		m.frozen = time.Time{}
		m.thawed.Thawed(time.Now(), cfg.SessionTimeout+cfg.RebalanceTimeout)
		logf("%v member %d resumed (SIGCONT)", since(), m.index)
	}
	freezeEvent := map[*member]int{}
	// After a resume, the frozen member's handlings for StaleWindow, by
	// event: judged (Event.Stale) once the run is over.
	type watched struct {
		member int
		until  time.Duration
		offs   [][2]int64
	}
	var stale = map[int]*watched{}
	h.onLine = func(m int, p int32, o int64) {
		for _, w := range stale {
			if w.member == m && h.stamp <= w.until {
				w.offs = append(w.offs, [2]int64{int64(p), o})
			}
		}
	}
	// serve answers a request of the Chaos function; freezing is refused
	// once the churn is over.
	serve := func(r chaosReq, churning bool) {
		switch {
		case r.end > 0:
			ev.end(r.end-1, since(), bound())
			r.reply <- r.end - 1
		case r.freeze > 0:
			var eligible []*member
			for _, m := range live() {
				if churning && !m.stopping && m.frozen.IsZero() && h.byMember[m.index] > 0 &&
					(r.member == 0 || m.index == r.member-1) {
					eligible = append(eligible, m)
				}
			}
			if len(eligible) == 0 {
				r.reply <- -1
				return
			}
			m := eligible[rand.IntN(len(eligible))]
			freezeEvent[m] = ev.begin("freeze", since(), bound())
			_ = m.cmd.Process.Signal(syscall.SIGSTOP)
			m.frozen = time.Now().Add(r.freeze)
			res.Freezes++
			logf("%v member %d frozen (SIGSTOP) for %v after %d handled", since(), m.index, r.freeze, h.byMember[m.index])
			r.reply <- freezeEvent[m]
		default:
			i := ev.begin(r.kind, since(), bound())
			logf("%v fault %s", since(), r.kind)
			r.reply <- i
		}
	}
	// thawDue resumes the frozen members whose time is up (all if all).
	thawDue := func(now time.Time, all bool) {
		for _, m := range members {
			if !m.frozen.IsZero() && (all || now.After(m.frozen)) {
				thaw(m)
				ev.end(freezeEvent[m], since(), bound())
				stale[freezeEvent[m]] = &watched{member: m.index, until: since() + StaleWindow}
			}
		}
	}
	chaosStopped := false
	endChaos := func() {
		if !chaosStopped {
			chaosStopped = true
			stopChaos(func(r chaosReq) { serve(r, false) })
		}
		thawDue(time.Now(), true)
	}
	defer endChaos()

	// The churn: kill and replace until every partition is settled.
	lastProgress := map[int32]time.Time{}
	lastCommit := map[int32]int64{}
	lastDistinct := map[int32]int64{}
	for p := range ends {
		lastProgress[p] = start
	}
	nextKill := start.Add(randDur(cfg.KillMin, cfg.KillMax))
	var ghostSince time.Time
	stalled := map[int32]bool{}
	// ghostCheck records a ghost and returns true once the group has been
	// Stable with more members than live processes for GhostAfter.
	ghostCheck := func(now time.Time, v groupView) bool {
		if v.state != "Stable" || len(v.members) <= len(live()) {
			ghostSince = time.Time{}
			return false
		}
		if ghostSince.IsZero() {
			ghostSince = now
			return false
		}
		if now.Sub(ghostSince) < cfg.GhostAfter {
			return false
		}
		res.Ghosts = append(res.Ghosts, fmt.Sprintf(
			"group Stable with %d members for %d live processes for %v (at %v): %s; commits %v; handled per partition %v",
			len(v.members), len(live()), cfg.GhostAfter, since(), describeMembers(v.members), v.commits, h.distinct))
		logf("%v ghost: %s", since(), res.Ghosts[len(res.Ghosts)-1])
		return true
	}
	preparing := StuckWatch{After: cfg.StuckAfter}
	// stuckCheck records a stuck group and returns true once the group has
	// been PreparingRebalance at one generation for StuckAfter.
	stuckCheck := func(now time.Time, v groupView) bool {
		if preparing.Observe(now, v.state, v.epoch) < cfg.StuckAfter {
			return false
		}
		res.Stuck = append(res.Stuck, fmt.Sprintf(
			"group PreparingRebalance at generation %d for %v (at %v; rebalance timeout %v) with %d members for %d live processes: %s; commits %v; handled per partition %v",
			v.epoch, cfg.StuckAfter, since(), cfg.RebalanceTimeout, len(v.members), len(live()), describeMembers(v.members), v.commits, h.distinct))
		logf("%v stuck: %s", since(), res.Stuck[len(res.Stuck)-1])
		return true
	}
	deadline := start.Add(cfg.Timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
loop:
	for {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case r := <-env.reqs:
			serve(r, true)
			continue
		case <-tick.C:
		}
		now := time.Now()
		thawDue(now, false)
		h.stamp = since()
		if err := h.read(); err != nil {
			return res, err
		}
		ev.charge(h.takeDups(), readLag)
		ev.widen(since(), bound)
		v := w.view()
		if stuckCheck(now, v) {
			// Before the stall check: a stuck group stalls every partition.
			res.Aborted = "stuck"
			break loop
		}
		settled := true
		for p, end := range ends {
			if v.commits[p] > lastCommit[p] || h.distinct[p] > lastDistinct[p] {
				lastProgress[p] = now
				lastCommit[p], lastDistinct[p] = max(lastCommit[p], v.commits[p]), h.distinct[p]
			}
			idle := now.Sub(lastProgress[p])
			if cfg.Chaos != nil {
				idle = min(idle, now.Sub(start.Add(ev.quiet)))
			}
			// Messages remain while one at or above the commit is unhandled;
			// unhandled ones below it are lost, not pending.
			pending := h.pending(p, v.commits[p])
			done := v.commits[p] >= end || (pending == 0 && idle >= cfg.SettleAfter) || stalled[p]
			if !done && pending > 0 && idle >= cfg.StallAfter && v.state == "Stable" && len(v.members) > len(live()) {
				// StallAfter exceeds the session timeout: a correct broker
				// would have evicted every dead member by now.
				res.Ghosts = append(res.Ghosts, fmt.Sprintf(
					"partition %d stalled %v (at %v) while the group is Stable with %d members for %d live processes: %s; commits %v; handled per partition %v",
					p, idle.Round(time.Second), since(), len(v.members), len(live()), describeMembers(v.members), v.commits, h.distinct))
				logf("%v ghost: %s", since(), res.Ghosts[len(res.Ghosts)-1])
				res.Aborted = "ghost"
				break loop
			}
			if !done && pending > 0 && idle >= cfg.StallAfter {
				// A stalled partition counts as settled: the run goes on to
				// the clean stop, and its unhandled messages are judged
				// against the final commit like any others.
				stalled[p], done = true, true
				res.Stalls = append(res.Stalls, fmt.Sprintf(
					"partition %d: no progress for %v (at %v): committed %d, log end %d, %d unhandled at or above the commit, %d of %d handled; group %s: %s",
					p, idle.Round(time.Second), since(), v.commits[p], end, pending, h.distinct[p], end, v.state, describeMembers(v.members)))
				logf("%v stall: %s", since(), res.Stalls[len(res.Stalls)-1])
			}
			settled = settled && done
		}
		if ghostCheck(now, v) {
			res.Aborted = "ghost"
			break loop
		}
		if settled {
			break loop
		}
		if now.After(deadline) {
			res.Aborted = "timeout"
			break loop
		}
		mayKill := map[*member]bool{}
		for _, m := range live() {
			if m.handling.IsZero() && h.byMember[m.index] > 0 {
				m.handling = now
			}
			mayKill[m] = m.thawed.Clear(now, h.byMember[m.index])
		}
		if res.Kills+res.Terms < cfg.Kills && now.After(nextKill) && h.progressed(cfg, res.Kills+res.Terms) {
			var eligible []*member
			for _, m := range live() {
				// Only a member that has handled a message has completed its
				// first join: killing one still in it can leave a ghost. The
				// same after a freeze: it may be rejoining under a new id
				// (ThawGuard).
				if !m.stopping && m.frozen.IsZero() && mayKill[m] && h.byMember[m.index] > 0 && !m.handling.IsZero() && now.Sub(m.handling) >= cfg.KillMinAge {
					eligible = append(eligible, m)
				}
			}
			if len(eligible) == 0 {
				nextKill = now.Add(100 * time.Millisecond)
				continue
			}
			m := eligible[rand.IntN(len(eligible))]
			m.stopping = true
			if cfg.KillOnly || rand.IntN(2) == 0 {
				m.killed = true
				res.Kills++
				ev.begin("kill", since(), bound())
				_ = m.cmd.Process.Signal(syscall.SIGKILL)
				logf("%v member %d SIGKILLed after %d handled", since(), m.index, h.byMember[m.index])
			} else {
				res.Terms++
				ev.begin("term", since(), bound())
				_ = m.cmd.Process.Signal(syscall.SIGTERM)
				logf("%v member %d SIGTERMed after %d handled", since(), m.index, h.byMember[m.index])
			}
			if err := spawn(); err != nil {
				return res, err
			}
			nextKill = now.Add(randDur(cfg.KillMin, cfg.KillMax))
		}
	}

	// The chaos ends (its faults undone, frozen members resumed) before
	// the clean stop.
	endChaos()

	// The clean stop. Unless the run was aborted, first wait (up to
	// GhostAfter) for the group to be Stable with one member per live
	// process, so that no member is stopped during its first join.
	if res.Aborted == "" {
		waitUntil := time.Now().Add(cfg.GhostAfter + time.Second)
		for time.Now().Before(waitUntil) {
			v := w.view()
			if ghostCheck(time.Now(), v) {
				res.Aborted = "ghost"
				break
			}
			if stuckCheck(time.Now(), v) {
				res.Aborted = "stuck"
				break
			}
			if v.state == "Stable" && len(v.members) == len(live()) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	stopAt := time.Now()
	logf("%v stopping %d members (SIGTERM)", since(), len(live()))
	ev.begin("stop", since(), bound())
	for _, m := range live() {
		if !m.killed {
			_ = m.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	for _, m := range members {
		select {
		case <-m.exited:
		case <-time.After(cfg.StopTimeout):
			res.Hung = append(res.Hung, fmt.Sprintf("member %d still running %v after SIGTERM", m.index, cfg.StopTimeout))
			_ = m.cmd.Process.Kill()
			<-m.exited
			continue
		}
		if !m.killed && m.exitErr != nil {
			res.Failed = append(res.Failed, fmt.Sprintf("member %d: %v (log %s)", m.index, m.exitErr,
				filepath.Join(cfg.Dir, fmt.Sprintf("member-%d.log", m.index))))
		}
	}
	res.Duration = time.Since(start)
	res.Rewinds = w.stop()
	h.stamp = since()
	var events []ownEvent
	exits := map[int]time.Time{}
	for _, m := range members {
		ev, err := readOwnership(filepath.Join(cfg.Dir, fmt.Sprintf("member-%d.log", m.index)), m.index)
		if err != nil {
			return res, err
		}
		events = append(events, ev...)
		exits[m.index] = m.exitAt
	}
	res.Unowned = unowned(events, exits, cfg.Partitions, stopAt)
	if err := h.read(); err != nil {
		return res, err
	}
	ev.charge(h.takeDups(), readLag)
	ev.share()
	for i, w := range stale {
		for _, po := range w.offs {
			if h.count(int32(po[0]), po[1]) > 1 {
				ev.list[i].Stale++
			}
		}
	}
	res.Events = ev.list
	res.Handled = h.lines
	res.Duplicates = h.duplicates()
	if res.Aborted != "" {
		return res, nil
	}
	com, err := c.Committed(ctx, group, topic)
	if err != nil {
		return res, fmt.Errorf("churn: final commits: %w", err)
	}
	final := map[int32]int64{}
	for p, cm := range com {
		final[p] = cm.Offset
	}
	res.Lost, res.LostAt = h.lost(final)
	if cfg.Check != nil {
		if err := cfg.Check(ctx, c, &res); err != nil {
			return res, fmt.Errorf("churn: check: %w", err)
		}
	}
	for p := range int32(len(ends)) {
		// A stalled partition cannot reach its log end, and what a killed
		// member handled is not committed: its stall is the finding.
		if !stalled[p] && com[p].Offset != ends[p] {
			res.Short = append(res.Short, fmt.Sprintf("partition %d: committed %d, log end %d (%d of %d handled)",
				p, com[p].Offset, ends[p], h.distinct[p], ends[p]))
		}
	}
	return res, nil
}

// randDur returns a uniformly random duration in [lo, hi].
func randDur(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

// produce writes the run's messages: keyless, or with cfg.Keys keys.
func produce(ctx context.Context, c *kafkatest.Cluster, topic string, cfg Config) error {
	if cfg.Keys == 0 {
		_, err := c.Produce(ctx, topic, cfg.Messages)
		return err
	}
	recs := make([]kafkatest.KeyedRecord, cfg.Messages)
	for i := range recs {
		k := i % cfg.Keys
		recs[i] = kafkatest.KeyedRecord{Partition: int32(k) % cfg.Partitions,
			Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "m%d", i)}
	}
	_, err := c.ProduceKeyed(ctx, topic, recs)
	return err
}
