package churn

// This file runs the rolling-restart scenario of issue 22: static members
// (each with an instance id) are stopped with SIGTERM and started again one
// after the other, a fixed time down each, while messages are produced.
// What a deploy with static membership should cost: no partition changes
// owner, at most one rebalance per restart, no partition idle longer than
// the time its owner was down (plus a margin), nothing lost or rewound.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/inorder/inorder/internal/kafkatest"
)

// RollingConfig describes one rolling-restart run. Zero values take the
// defaults named on the fields.
type RollingConfig struct {
	Command []string // the member process argv (see Config.Command). Required.
	Dir     string   // receives the handled file and the member logs. Required.
	Adapter string   // a label
	// Protocol: "eager" or "cooperative" (see Config.Protocol). Default eager.
	Protocol string
	// Static gives the members instance ids (m0, m1, ...); false runs the
	// same restarts with dynamic members, for comparison.
	Static     bool
	Members    int           // Default 3.
	Partitions int32         // Default 4.
	Rate       int           // messages produced per second during the run. Default 1000.
	Down       time.Duration // how long each member stays stopped. Default 2s.
	// SessionTimeout must outlast Down plus a member's start. Default 10s;
	// RebalanceTimeout 12s, RevokeTimeout 4s, HeartbeatInterval 1s.
	SessionTimeout, RebalanceTimeout, RevokeTimeout, HeartbeatInterval time.Duration
	HandlerMin, HandlerMax                                             time.Duration // Default 10ms, 30ms.
	Concurrency                                                        int           // Default 16.
	Timeout                                                            time.Duration // bounds the run. Default 5 minutes.
	Logf                                                               func(format string, args ...any)
}

// RollingResult is the verdict of one rolling-restart run.
type RollingResult struct {
	Adapter, Protocol string
	Static            bool
	Restarts          int
	// Rebalances counts the group's generations between each SIGTERM and
	// the group being stable with every member again, per restart.
	Rebalances []int
	// Moved counts, per restart, the partitions whose owner (by instance id,
	// or by member process for dynamic members) differs from before.
	Moved    []int
	MaxIdle  time.Duration // the longest a partition went without a newly handled message while messages waited
	Lost     int
	LostAt   []string
	Dups     int // handlings beyond the first
	Rewinds  []string
	Short    []string
	Failed   []string // a member that did not stop cleanly, a restart that did not rejoin
	Unowned  time.Duration
	Duration time.Duration
	Dir      string
}

// OK reports whether the run passed the scenario's checks: nothing lost,
// rewound or short, no member failure and, for static members, no
// partition moved.
func (r RollingResult) OK() bool {
	moved := 0
	for _, m := range r.Moved {
		moved += m
	}
	return r.Lost == 0 && len(r.Rewinds) == 0 && len(r.Short) == 0 && len(r.Failed) == 0 && (!r.Static || moved == 0)
}

func (r RollingResult) String() string {
	return fmt.Sprintf("%s/%s static=%v: %d restarts, rebalances %v, moved %v, max idle %v, lost %d, dups %d, rewinds %d, short %d, failed %d, unowned %v, %v",
		r.Adapter, r.Protocol, r.Static, r.Restarts, r.Rebalances, r.Moved, r.MaxIdle.Round(10*time.Millisecond),
		r.Lost, r.Dups, len(r.Rewinds), len(r.Short), len(r.Failed), r.Unowned.Round(100*time.Millisecond),
		r.Duration.Round(100*time.Millisecond))
}

func (c *RollingConfig) fill() {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.Protocol == "" {
		c.Protocol = "eager"
	}
	if c.Members == 0 {
		c.Members = 3
	}
	if c.Partitions == 0 {
		c.Partitions = 4
	}
	if c.Rate == 0 {
		c.Rate = 1000
	}
	if c.Concurrency == 0 {
		c.Concurrency = 16
	}
	def(&c.Down, 2*time.Second)
	def(&c.SessionTimeout, 10*time.Second)
	def(&c.RebalanceTimeout, 12*time.Second)
	def(&c.RevokeTimeout, 4*time.Second)
	def(&c.HeartbeatInterval, time.Second)
	def(&c.HandlerMin, 10*time.Millisecond)
	def(&c.HandlerMax, 30*time.Millisecond)
	def(&c.Timeout, 5*time.Minute)
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
}

// RunRolling runs the rolling-restart scenario and returns its verdict; the
// error is for a run that could not be carried out.
func RunRolling(ctx context.Context, cfg RollingConfig) (RollingResult, error) {
	cfg.fill()
	res := RollingResult{Adapter: cfg.Adapter, Protocol: cfg.Protocol, Static: cfg.Static, Dir: cfg.Dir}
	if len(cfg.Command) == 0 || cfg.Dir == "" || cfg.Members < 1 || cfg.Rate < 1 {
		return res, fmt.Errorf("%w: Command, Dir, Members and Rate are required", ErrBadConfig)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c, err := kafkatest.New(kafkatest.WithTopic(topic, cfg.Partitions))
	if err != nil {
		return res, err
	}
	defer c.Close()
	start := time.Now()
	since := func() time.Duration { return time.Since(start).Round(time.Millisecond) }

	// The producer: Rate messages a second, in tenths, until stopped. The
	// handled file is sized for everything it may produce.
	maxMessages := cfg.Rate * int(cfg.Timeout/time.Second)
	upper := map[int32]int64{}
	for p := range cfg.Partitions {
		upper[p] = int64(maxMessages)
	}
	out := filepath.Join(cfg.Dir, "handled.txt")
	h := newHandled(out, upper)
	stopProduce := make(chan struct{})
	produced := make(chan error, 1)
	go func() {
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		n := 0
		for {
			select {
			case <-stopProduce:
				produced <- nil
				return
			case <-ctx.Done():
				produced <- ctx.Err()
				return
			case <-t.C:
			}
			batch := max(1, cfg.Rate/10)
			if n+batch > maxMessages {
				continue
			}
			if _, err := c.Produce(ctx, topic, batch, kafkatest.FirstIndex(n)); err != nil {
				produced <- err
				return
			}
			n += batch
		}
	}()
	w := startWatch(ctx, c.Fake(), group, topic, start)
	defer w.stop()

	type proc struct {
		index  int
		slot   int
		cmd    *exec.Cmd
		exited chan struct{}
		err    error
		exitAt time.Time
	}
	var procs []*proc
	defer func() {
		for _, p := range procs {
			select {
			case <-p.exited:
			default:
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
		}
	}()
	spawn := func(slot int) (*proc, error) {
		i := len(procs)
		spec := MemberSpec{Index: i, Adapter: cfg.Adapter, Brokers: c.Addrs(), Group: group, Topic: topic, Out: out,
			Protocol: cfg.Protocol, SessionTimeout: cfg.SessionTimeout, RebalanceTimeout: cfg.RebalanceTimeout,
			RevokeTimeout: cfg.RevokeTimeout, HeartbeatInterval: cfg.HeartbeatInterval, Concurrency: cfg.Concurrency,
			HandlerMin: cfg.HandlerMin, HandlerMax: cfg.HandlerMax}
		if cfg.Static {
			spec.InstanceID = fmt.Sprintf("m%d", slot)
		}
		env, err := memberEnv(spec)
		if err != nil {
			return nil, err
		}
		logFile, err := os.Create(filepath.Join(cfg.Dir, fmt.Sprintf("member-%d.log", i)))
		if err != nil {
			return nil, err
		}
		cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
		cmd.Env = append(os.Environ(), env)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		if err := cmd.Start(); err != nil {
			logFile.Close()
			return nil, fmt.Errorf("%w: start member %d: %w", ErrMember, i, err)
		}
		p := &proc{index: i, slot: slot, cmd: cmd, exited: make(chan struct{})}
		go func() {
			p.err = cmd.Wait()
			p.exitAt = time.Now()
			logFile.Close()
			close(p.exited)
		}()
		procs = append(procs, p)
		cfg.Logf("%v member %d (slot %d) started", since(), i, slot)
		return p, nil
	}
	slots := make([]*proc, cfg.Members)
	for s := range slots {
		if slots[s], err = spawn(s); err != nil {
			return res, err
		}
	}

	// observe reads the handled file and tracks each partition's longest
	// time without a newly handled message while it had some waiting.
	lastDistinct := map[int32]int64{}
	lastProgress := map[int32]time.Time{}
	observe := func() error {
		if err := h.read(); err != nil {
			return err
		}
		now := time.Now()
		ends, err := c.LogEnd(ctx, topic)
		if err != nil {
			return err
		}
		for p := range cfg.Partitions {
			if h.distinct[p] > lastDistinct[p] || h.distinct[p] >= ends[p] {
				if !lastProgress[p].IsZero() {
					res.MaxIdle = max(res.MaxIdle, now.Sub(lastProgress[p]))
				}
				lastProgress[p] = now
				lastDistinct[p] = h.distinct[p]
			}
		}
		return nil
	}
	// owners maps each partition to its owner, once the group is Stable
	// with one member per slot, every partition assigned, and every slot's
	// current process has handled a message.
	owners := func() (map[int32]int, bool) {
		g := c.Fake().GroupInfo(group)
		if g == nil || g.State != "Stable" || len(g.Members) != cfg.Members || g.NumAssigned() != int(cfg.Partitions) {
			return nil, false
		}
		own := map[int32]int{}
		for _, m := range g.Members {
			// A static member's owner is its slot (instance id m<slot>); a
			// dynamic member's, its member id (new at every restart).
			owner := int(hashID(m.MemberID))
			if m.InstanceID != nil {
				_, _ = fmt.Sscanf(*m.InstanceID, "m%d", &owner)
			}
			for _, ps := range m.Assignment {
				for _, p := range ps {
					own[p] = owner
				}
			}
		}
		for _, s := range slots {
			if h.byMember[s.index] == 0 {
				return nil, false
			}
		}
		return own, true
	}
	epoch := func() int32 {
		if g := c.Fake().GroupInfo(group); g != nil {
			return g.Epoch
		}
		return 0
	}
	waitStable := func(what string) (map[int32]int, error) {
		for {
			if err := observe(); err != nil {
				return nil, err
			}
			if own, ok := owners(); ok {
				return own, nil
			}
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: waiting for %s", ctx.Err(), what)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	before, err := waitStable("the group to be stable")
	if err != nil {
		res.Failed = append(res.Failed, err.Error())
		return res, nil
	}
	for s := range slots {
		e0 := epoch()
		p := slots[s]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		cfg.Logf("%v member %d (slot %d) SIGTERMed", since(), p.index, s)
		select {
		case <-p.exited:
		case <-time.After(cfg.RevokeTimeout + 20*time.Second):
			res.Failed = append(res.Failed, fmt.Sprintf("member %d still running after SIGTERM", p.index))
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if p.err != nil {
			res.Failed = append(res.Failed, fmt.Sprintf("member %d: %v", p.index, p.err))
		}
		downUntil := time.Now().Add(cfg.Down)
		for time.Now().Before(downUntil) {
			if err := observe(); err != nil {
				return res, err
			}
			time.Sleep(20 * time.Millisecond)
		}
		if slots[s], err = spawn(s); err != nil {
			return res, err
		}
		after, err := waitStable(fmt.Sprintf("slot %d to rejoin", s))
		if err != nil {
			res.Failed = append(res.Failed, err.Error())
			break
		}
		res.Restarts++
		res.Rebalances = append(res.Rebalances, int(epoch()-e0))
		moved := 0
		for part, o := range before {
			if after[part] != o {
				moved++
			}
		}
		res.Moved = append(res.Moved, moved)
		before = after
	}

	// Stop producing, let the group finish, stop everyone.
	close(stopProduce)
	if err := <-produced; err != nil {
		return res, err
	}
	ends, err := c.LogEnd(ctx, topic)
	if err != nil {
		return res, err
	}
	for {
		if err := observe(); err != nil {
			return res, err
		}
		com, err := c.Committed(ctx, group, topic)
		if err != nil {
			return res, err
		}
		done := true
		for p, e := range ends {
			done = done && com[p].Offset >= e
		}
		if done {
			break
		}
		select {
		case <-ctx.Done():
			res.Failed = append(res.Failed, "timed out waiting for the final commits")
			done = true
		case <-time.After(50 * time.Millisecond):
		}
		if done {
			break
		}
	}
	stopAt := time.Now()
	for _, p := range slots {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range slots {
		select {
		case <-p.exited:
		case <-time.After(cfg.RevokeTimeout + 20*time.Second):
			res.Failed = append(res.Failed, fmt.Sprintf("member %d still running after the final SIGTERM", p.index))
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
	}
	res.Duration = time.Since(start)
	res.Rewinds = w.stop()
	if err := h.read(); err != nil {
		return res, err
	}
	com, err := c.Committed(context.Background(), group, topic)
	if err != nil {
		return res, err
	}
	final := map[int32]int64{}
	for p, cm := range com {
		final[p] = cm.Offset
		if cm.Offset != ends[p] {
			res.Short = append(res.Short, fmt.Sprintf("partition %d: committed %d, log end %d", p, cm.Offset, ends[p]))
		}
	}
	res.Lost, res.LostAt = h.lost(final)
	distinct := int64(0)
	for _, d := range h.distinct {
		distinct += d
	}
	res.Dups = h.lines - int(distinct)
	var events []ownEvent
	exits := map[int]time.Time{}
	for _, p := range procs {
		ev, err := readOwnership(filepath.Join(cfg.Dir, fmt.Sprintf("member-%d.log", p.index)), p.index)
		if err != nil {
			return res, err
		}
		events = append(events, ev...)
		exits[p.index] = p.exitAt
	}
	res.Unowned = unowned(events, exits, cfg.Partitions, stopAt)
	return res, nil
}

// hashID folds a member id into an int (owner identity of a dynamic member).
func hashID(s string) uint32 {
	var h uint32 = 2166136261
	for i := range len(s) {
		h = (h ^ uint32(s[i])) * 16777619
	}
	return h >> 1
}
