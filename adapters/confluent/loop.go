package confluent

// This file holds one Run: the poll loop, the rebalance callback, and the
// commit function (StoreOffsets + Commit). The tracking of messages and the
// pause/resume of full partitions are the feeder's (feed.go).
//
// Threads. The Run goroutine polls; librdkafka calls the rebalance
// callback inside Poll (and inside Close), on the same goroutine. The
// feeder tracks and pauses. The engine's commit loop calls StoreOffsets and
// Commit, which librdkafka allows from any thread; StoreOffsets refuses
// partitions that are not assigned, and the engine serialises commits with
// revokes, so no commit is issued for a partition after its revoke.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/inorder/inorder/adapters/internal/engine"
)

const pollTimeout = 100 // ms: the longest a Poll waits, and so the latency of a stop

type runner struct {
	c    *Consumer
	cfg  *config // librdkafka's own settings
	opts *engine.Options
	log  *slog.Logger
	kc   *kafka.Consumer
	eng  *engine.Engine[*kafka.Message]
	sess *engine.Session[*kafka.Message]
	logs chan kafka.LogEvent

	// Poll goroutine only (the rebalance callback runs inside Poll).
	batch       []item // messages received, not yet handed to the feeder
	cooperative bool   // protocol: from the configuration, then as read at each assign outside shutdown
	closing     bool   // the feeder and the session are done: the callback only completes rebalances
	err         error  // set by the callback: stops Run
	// owned are the pstates handed to the feeder, so that a revoke can
	// mark them revoked and cancel their deliveries without waiting for it.
	owned map[TopicPartition]*pstate
	fctx  context.Context // the feeder's context, parent of each pstate's

	// Between the poll loop and the feeder.
	in       chan cmd
	free     chan []item
	feedDone chan struct{}
	stopped  <-chan struct{} // Run's ctx.Done(): the poll goroutine stops waiting for the feeder
	stopping atomic.Bool     // set by the poll goroutine at shutdown: the feeder tracks nothing more

	// Feeder only (see feed.go).
	parts   map[TopicPartition]*pstate
	blocked map[TopicPartition]*pstate // partitions with a non-empty queue
	last    *pstate                    // the partition of the last message (a cache of parts)

	lostMu sync.Mutex
	lost   map[TopicPartition]bool // partitions being closed without commit

	calls sync.WaitGroup // librdkafka commit calls running (see call)
}

func newRunner(c *Consumer, eng *engine.Engine[*kafka.Message]) (*runner, error) {
	r := &runner{
		c:        c,
		cfg:      c.cfg,
		opts:     c.opts,
		log:      c.opts.Logger,
		eng:      eng,
		logs:     make(chan kafka.LogEvent, 256),
		batch:    make([]item, 0, batchSize),
		in:       make(chan cmd, feedDepth),
		free:     make(chan []item, feedDepth+1),
		feedDone: make(chan struct{}),
		parts:    make(map[TopicPartition]*pstate),
		blocked:  make(map[TopicPartition]*pstate),
		lost:     make(map[TopicPartition]bool),
		owned:    make(map[TopicPartition]*pstate),
	}
	cm := cloneMap(c.cm)
	cm["go.logs.channel.enable"] = true
	cm["go.logs.channel"] = r.logs
	kc, err := kafka.NewConsumer(&cm)
	if err != nil {
		return nil, fmt.Errorf("%w: librdkafka: %v", ErrInvalidConfig, err)
	}
	r.kc = kc
	r.cooperative = cooperativeByConfig(cm)
	return r, nil
}

// cooperativeByConfig reports whether cm selects the COOPERATIVE rebalance
// protocol: librdkafka uses it when every assignor in
// partition.assignment.strategy is cooperative (it refuses a mix), and with
// group.protocol=consumer. It is the protocol until an assignment reads it
// from librdkafka, and the one used while closing, when asking librdkafka
// can block for ever (see assign).
func cooperativeByConfig(cm kafka.ConfigMap) bool {
	if p, _ := cm["group.protocol"].(string); strings.EqualFold(strings.TrimSpace(p), "consumer") {
		return true
	}
	s, _ := cm["partition.assignment.strategy"].(string)
	if strings.TrimSpace(s) == "" {
		return false // librdkafka's default: range,roundrobin
	}
	for a := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(a) != "cooperative-sticky" {
			return false
		}
	}
	return true
}

func (r *runner) run(ctx context.Context) error {
	logStop := make(chan struct{})
	logDone := make(chan struct{})
	go r.forwardLogs(logStop, logDone)

	r.stopped = ctx.Done()
	r.eng.Start(ctx)
	r.sess = r.eng.NewSession(r.commit, engine.SessionHooks{})
	fctx, fcancel := context.WithCancel(context.WithoutCancel(ctx))
	defer fcancel()
	r.fctx = fctx
	go r.feed()
	var err error
	if serr := r.kc.SubscribeTopics(r.c.topics, r.rebalance); serr != nil {
		err = fmt.Errorf("%w: subscribe: %v", ErrClient, serr)
	} else {
		err = r.poll(ctx)
	}

	// Shutdown: stop the feeder, then drain and commit while the partitions
	// are still assigned (StoreOffsets needs that), then let librdkafka
	// revoke (the callback only completes it now) and leave the group.
	r.closing = true
	t0 := time.Now()
	r.stopping.Store(true)
	close(r.in)
	select {
	case <-r.feedDone:
	case <-time.After(r.opts.RevokeTimeout):
		// Every worker is stuck in a handler: give up the message the
		// feeder waits to hand out (it is not committed).
		fcancel()
		<-r.feedDone
	}
	t1 := time.Now()
	r.sess.Close(context.WithoutCancel(ctx))
	r.eng.Stop()
	// A commit abandoned at its timeout still holds the librdkafka
	// handle: give it the request timeout to complete before closing it.
	if !waitGroup(&r.calls, r.opts.RequestTimeout) {
		r.log.Error("confluent: a commit call is still running at close", "waited", r.opts.RequestTimeout)
	}
	t2 := time.Now()
	if cerr := r.kc.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("%w: close: %v", ErrClient, cerr)
	}
	r.log.Debug("confluent: closed", "feeder", t1.Sub(t0), "drain_commit", t2.Sub(t1), "librdkafka_close", time.Since(t2))
	close(logStop)
	<-logDone
	if herr := r.eng.Err(); herr != nil {
		return herr
	}
	return err
}

// poll is the loop: Poll, and hand the messages to the feeder in batches.
// It returns nil when ctx ends or a handler failed (Run returns the
// engine's error), or the error that must stop Run.
func (r *runner) poll(ctx context.Context) error {
	fatal := r.eng.Fatal()
	done := ctx.Done()
	for turn := 0; ; turn++ {
		// Checked every 32 messages and whenever Poll comes back without
		// one: a select per message is a measurable share of the loop.
		if turn&31 == 0 {
			select {
			case <-done:
				return nil
			case <-fatal:
				return nil
			default:
			}
			if r.err != nil {
				return r.err
			}
		}
		timeout := pollTimeout
		if len(r.batch) > 0 {
			timeout = 0 // hand over what we have rather than wait with it
		}
		switch e := r.kc.Poll(timeout).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				r.log.Warn("confluent: message error", "topic", deref(e.TopicPartition.Topic),
					"partition", e.TopicPartition.Partition, "error", e.TopicPartition.Error)
				continue
			}
			r.batch = append(r.batch, item{msg: e})
			if len(r.batch) == cap(r.batch) && !r.flush() {
				return nil
			}
		case kafka.PartitionEOF:
			r.batch = append(r.batch, item{eof: kafka.TopicPartition(e)})
			if !r.flush() {
				return nil
			}
			turn = -1
		case kafka.Error:
			if !r.flush() {
				return nil
			}
			if e.IsFatal() {
				return fmt.Errorf("%w: %v", ErrClient, e)
			}
			r.log.Warn("confluent: librdkafka error", "code", e.Code(), "error", e)
			turn = -1
		default: // nil (nothing to poll now), a rebalance handled in the callback, stats
			if !r.flush() {
				return nil
			}
			turn = -1
		}
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// rebalance is the rebalance callback, called by librdkafka inside Poll (and
// inside Close) on the Run goroutine. It must call Assign/IncrementalAssign
// or Unassign/IncrementalUnassign itself: otherwise confluent-kafka-go does,
// and reads the rebalance protocol inside the revoke (a known hang in Close).
func (r *runner) rebalance(kc *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		r.assign(kc, e.Partitions)
	case kafka.RevokedPartitions:
		r.revoke(kc, e.Partitions)
	}
	return nil
}

func toTP(ktp kafka.TopicPartition) TopicPartition {
	return TopicPartition{Topic: deref(ktp.Topic), Partition: ktp.Partition}
}

// assign sets up newly assigned partitions: it reads their committed
// offsets and commit metadata, picks the start of those without a commit,
// registers them with the engine, and assigns them to librdkafka at exactly
// those offsets. The rebalance protocol is read here, once per assignment.
//
// Not while closing: an assignment that completes as Run stops (Close
// called mid-join) is delivered by librdkafka inside kafka.Consumer.Close,
// and GetRebalanceProtocol there is a request to the group's handler that
// can wait for ever (librdkafka #4041, confluent-kafka-go #1016), and
// answers "" while the group terminates, which would turn a COOPERATIVE
// member's last unassign into an EAGER one. The protocol already known is
// used instead.
func (r *runner) assign(kc *kafka.Consumer, ktps []kafka.TopicPartition) {
	if r.closing {
		r.ack(kc, ktps, true)
		return
	}
	switch kc.GetRebalanceProtocol() {
	case "COOPERATIVE":
		r.cooperative = true
	case "EAGER":
		r.cooperative = false
	}
	if r.err != nil {
		r.ack(kc, ktps, true)
		return
	}
	timeoutMs := int(r.opts.RequestTimeout.Milliseconds())
	committed, err := kc.Committed(ktps, timeoutMs)
	if err == nil && len(committed) != len(ktps) {
		err = fmt.Errorf("%d committed offsets for %d partitions", len(committed), len(ktps))
	}
	if err == nil && r.cfg.onCommitted != nil {
		r.cfg.onCommitted(committed)
	}
	if err == nil {
		// A partition whose commit could not be read is not one without a
		// commit: starting it at the log end (OffsetEnd) would skip
		// messages never handled.
		for _, ktp := range committed {
			if ktp.Error != nil {
				err = fmt.Errorf("%s[%d]: %v", deref(ktp.Topic), ktp.Partition, ktp.Error)
				break
			}
		}
	}
	if err != nil {
		r.err = fmt.Errorf("%w: committed offsets: %v", ErrAssign, err)
		r.ack(kc, ktps, true)
		return
	}
	at := make([]kafka.TopicPartition, len(committed))
	tps := make([]TopicPartition, len(committed))
	states := make([]*pstate, 0, len(committed))
	for i, ktp := range committed {
		tp := toTP(ktp)
		tps[i] = tp
		start, meta, logEnd := int64(ktp.Offset), deref(ktp.Metadata), int64(-1)
		if start < 0 || meta != "" {
			lo, hi, qerr := kc.QueryWatermarkOffsets(tp.Topic, tp.Partition, timeoutMs)
			if qerr != nil {
				r.err = fmt.Errorf("%w: watermarks of %s[%d]: %v", ErrAssign, tp.Topic, tp.Partition, qerr)
				r.ack(kc, ktps, true)
				return
			}
			logEnd = hi
			if start < 0 {
				start = lo
				if r.opts.StartOffset == Latest {
					start = hi
				}
			}
		}
		part, aerr := r.sess.Assign(tp, start, meta, logEnd)
		if aerr != nil {
			r.err = fmt.Errorf("%w: %v", ErrAssign, aerr)
			r.ack(kc, ktps, true)
			return
		}
		ktp.Offset = kafka.Offset(start)
		ktp.Metadata = nil
		at[i] = ktp
		bare := kafka.TopicPartition{Topic: ktp.Topic, Partition: ktp.Partition}
		pctx, pcancel := context.WithCancel(r.fctx)
		ps := &pstate{tp: tp, ktp: bare, part: part, wm: part.Watermark(),
			next: start, ctx: pctx, cancel: pcancel}
		states = append(states, ps)
		r.owned[tp] = ps
	}
	// Not run if Run is stopping: the feeder then drops these partitions'
	// messages, and the shutdown releases them with the session.
	_ = r.post(func() {
		for _, ps := range states {
			r.parts[ps.tp] = ps
			if b := r.blocked[ps.tp]; b != nil && b != ps {
				delete(r.blocked, ps.tp) // of an earlier, revoked assignment
			}
		}
		r.last = nil
	})
	r.ack(kc, at, true)
	// A partition paused before it moved away comes back paused in some
	// librdkafka versions: a new assignment starts with room.
	bare := make([]kafka.TopicPartition, len(states))
	for i, ps := range states {
		bare[i] = ps.ktp
	}
	if err := kc.Resume(bare); err != nil {
		r.log.Warn("confluent: resume after assign", "error", err)
	}
	if r.cfg.onAssign != nil {
		proto := "EAGER"
		if r.cooperative {
			proto = "COOPERATIVE"
		}
		r.cfg.onAssign(proto, tps)
	}
}

// revoke gives up partitions: it stops handing out their messages (the
// feeder drops what it queued for them, and a hand-off to the workers that
// waits for a busy one is cancelled), waits at most RevokeTimeout for the
// in-flight ones, stores and commits the commit points synchronously and
// closes them, then unassigns. A lost assignment (session timeout: another
// member may own the partitions already) is closed without waiting or
// committing.
//
// It does not wait for the feeder: the feeder can be blocked for as long
// as a handler runs (it waits for a free worker to hand out a message of a
// partition this member keeps), and the callback must return well within
// max.poll.interval.ms. The feeder sees the revoked flag and drops the
// partitions' messages; one it was tracking at that moment may still be
// handed out, which is safe: the drain waits for it (at most
// RevokeTimeout), the commit point does not pass it unless it is handled,
// and once the partition is closed a worker does not run it.
func (r *runner) revoke(kc *kafka.Consumer, ktps []kafka.TopicPartition) {
	lost := kc.AssignmentLost()
	tps := make([]TopicPartition, 0, len(ktps))
	for _, ktp := range ktps {
		tps = append(tps, toTP(ktp))
	}
	if r.cfg.onRevokeStart != nil {
		r.cfg.onRevokeStart(tps, lost)
	}
	if !r.closing {
		for _, tp := range tps {
			if ps := r.owned[tp]; ps != nil {
				ps.revoked.Store(true)
				ps.cancel()
				delete(r.owned, tp)
			}
		}
		if lost {
			r.lostMu.Lock()
			for _, tp := range tps {
				r.lost[tp] = true
			}
			r.lostMu.Unlock()
			r.sess.Lose(tps...)
			r.lostMu.Lock()
			for _, tp := range tps {
				delete(r.lost, tp)
			}
			r.lostMu.Unlock()
			r.log.Warn("confluent: assignment lost, partitions closed without commit", "partitions", len(tps))
		} else {
			r.sess.Revoke(context.Background(), tps...)
		}
	}
	r.ack(kc, ktps, false)
	if r.cfg.onRevoke != nil {
		r.cfg.onRevoke(tps, lost)
	}
}

// ack completes a rebalance with librdkafka, with the protocol read at the
// last assignment.
func (r *runner) ack(kc *kafka.Consumer, ktps []kafka.TopicPartition, assign bool) {
	var err error
	switch {
	case assign && r.cooperative:
		err = kc.IncrementalAssign(ktps)
	case assign:
		err = kc.Assign(ktps)
	case r.cooperative:
		err = kc.IncrementalUnassign(ktps)
	default:
		err = kc.Unassign()
	}
	if err != nil {
		r.log.Error("confluent: completing rebalance", "assign", assign, "error", err)
		if r.err == nil && assign && !r.closing {
			r.err = fmt.Errorf("%w: %v", ErrAssign, err)
		}
	}
}

// commit is the engine's CommitFunc: StoreOffsets (refused by librdkafka
// for partitions not assigned to this member) then Commit, which sends the
// stored offsets with this member's generation. Called by the engine's
// commit loop and, during a revoke, from the rebalance callback; the engine
// serialises the calls (under its commit mutex).
//
// Commit sends a stored offset only when it is greater than the committed
// one: a commit whose offset did not move but whose metadata (the done-set
// above the commit point) grew is left out of Commit's result (or Commit
// answers ErrNoOffset). Those partitions are sent with CommitOffsets, see
// commitExplicit.
//
// The librdkafka calls run on a goroutine of their own: when ctx ends
// first, commit returns ctx's error (nothing is recorded as committed), and
// the call may still complete later.
func (r *runner) commit(ctx context.Context, offs []engine.Offset) ([]error, error) {
	errs := make([]error, len(offs))
	tps := make([]kafka.TopicPartition, 0, len(offs))
	idx := make(map[TopicPartition]int, len(offs))
	r.lostMu.Lock()
	for i, o := range offs {
		if r.lost[o.TP] {
			errs[i] = errLost
			continue
		}
		topic, meta := o.TP.Topic, o.Metadata
		tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: o.TP.Partition,
			Offset: kafka.Offset(o.Offset), Metadata: &meta})
		idx[o.TP] = i
	}
	r.lostMu.Unlock()
	if len(tps) > 0 {
		if err := r.store(ctx, tps, idx, errs); err != nil {
			if r.cfg.onCommit != nil {
				for i := range errs {
					errs[i] = err
				}
				r.cfg.onCommit(offs, errs)
			}
			return nil, err
		}
	}
	if r.cfg.onCommit != nil {
		r.cfg.onCommit(offs, errs)
	}
	return errs, nil
}

// store stores and commits tps (errs[idx[tp]] nil so far) and sets their
// per-partition errors.
func (r *runner) store(ctx context.Context, tps []kafka.TopicPartition, idx map[TopicPartition]int, errs []error) error {
	stored, err := r.kc.StoreOffsets(tps)
	if err != nil && len(stored) == 0 {
		return fmt.Errorf("store offsets: %w", err)
	}
	// rd_kafka_offsets_store answers NO_ERROR when at least one partition
	// was stored: the per-partition errors are read whatever err is.
	for _, s := range stored {
		if i, ok := idx[toTP(s)]; ok && s.Error != nil {
			errs[i] = fmt.Errorf("store offset: %w", s.Error)
		}
	}
	send := tps[:0:0]
	for _, tp := range tps {
		if errs[idx[toTP(tp)]] == nil {
			send = append(send, tp)
		}
	}
	if len(send) == 0 {
		return nil
	}
	res, err := r.call(ctx, r.kc.Commit)
	var kerr kafka.Error
	switch {
	case errors.As(err, &kerr) && kerr.Code() == kafka.ErrNoOffset:
		res = nil // nothing sent: every partition is metadata-only
	case err != nil:
		if ctx.Err() != nil {
			return err
		}
		for _, tp := range send {
			errs[idx[toTP(tp)]] = fmt.Errorf("commit: %w", err)
		}
		return nil
	}
	sent := make(map[TopicPartition]bool, len(res))
	for _, c := range res {
		tp := toTP(c)
		sent[tp] = true
		if i, ok := idx[tp]; ok && c.Error != nil && errs[i] == nil {
			errs[i] = fmt.Errorf("commit: %w", c.Error)
		}
	}
	var metaOnly []kafka.TopicPartition
	for _, tp := range send {
		if !sent[toTP(tp)] {
			metaOnly = append(metaOnly, tp)
		}
	}
	if len(metaOnly) > 0 {
		return r.commitExplicit(ctx, metaOnly, idx, errs)
	}
	return nil
}

// commitExplicit sends tps, whose offsets Commit left out because they
// equal the committed ones (only their metadata changed), with
// CommitOffsets.
//
// An explicit CommitOffsets is not checked against the assignment by
// librdkafka, and a broker that does not check ownership (kfake; a real
// one within a COOPERATIVE generation) accepts it for a partition another
// member owns, rewinding it. It is safe here because it runs under the
// engine's commit mutex, for partitions the engine has not revoked: the
// rebalance callback revokes a partition in the engine (under that mutex)
// before it unassigns it from librdkafka, so the partition is still this
// member's assignment now, and the coordinator gives it to another member
// only after this member's callback completed (COOPERATIVE), or after every
// member rejoined, which this one does after the callback (EAGER). The one
// exception is an assignment lost to a session or poll timeout, when the
// coordinator reassigns without waiting: AssignmentLost is checked, and a
// partition librdkafka no longer lists in Assignment is refused too. What
// remains is a loss between that check and the request: a real broker
// fences it by generation (the loss means a new one); kfake would not.
func (r *runner) commitExplicit(ctx context.Context, tps []kafka.TopicPartition, idx map[TopicPartition]int, errs []error) error {
	assigned, err := r.kc.Assignment()
	if err != nil {
		for _, tp := range tps {
			errs[idx[toTP(tp)]] = fmt.Errorf("commit metadata: assignment: %w", err)
		}
		return nil
	}
	owned := make(map[TopicPartition]bool, len(assigned))
	for _, a := range assigned {
		owned[toTP(a)] = true
	}
	lost := r.kc.AssignmentLost()
	send := tps[:0:0]
	for _, tp := range tps {
		switch i := idx[toTP(tp)]; {
		case lost:
			errs[i] = errLost
		case !owned[toTP(tp)]:
			errs[i] = errNotAssigned
		default:
			send = append(send, tp)
		}
	}
	if len(send) == 0 {
		return nil
	}
	res, err := r.call(ctx, func() ([]kafka.TopicPartition, error) { return r.kc.CommitOffsets(send) })
	if err != nil {
		if ctx.Err() != nil {
			return err
		}
		for _, tp := range send {
			errs[idx[toTP(tp)]] = fmt.Errorf("commit metadata: %w", err)
		}
		return nil
	}
	got := make(map[TopicPartition]bool, len(res))
	for _, c := range res {
		tp := toTP(c)
		got[tp] = true
		if i, ok := idx[tp]; ok && c.Error != nil {
			errs[i] = fmt.Errorf("commit metadata: %w", c.Error)
		}
	}
	for _, tp := range send {
		if i := idx[toTP(tp)]; !got[toTP(tp)] && errs[i] == nil {
			errs[i] = errNotCommitted
		}
	}
	return nil
}

// call runs f (a librdkafka commit, which waits for the coordinator's
// answer without a bound) on a goroutine of its own and returns its result,
// or ctx's error if ctx ends first. Then the call may still complete later:
// run waits for it (bounded) before closing the librdkafka handle.
func (r *runner) call(ctx context.Context, f func() ([]kafka.TopicPartition, error)) ([]kafka.TopicPartition, error) {
	type result struct {
		res []kafka.TopicPartition
		err error
	}
	ch := make(chan result, 1)
	r.calls.Add(1)
	go func() {
		defer r.calls.Done()
		res, err := f()
		ch <- result{res, err}
	}()
	select {
	case x := <-ch:
		return x.res, x.err
	case <-ctx.Done():
		return nil, fmt.Errorf("commit not confirmed, it may still complete: %w", ctx.Err())
	}
}

// waitGroup waits for wg at most d and reports whether it is done.
func waitGroup(wg *sync.WaitGroup, d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

// forwardLogs sends librdkafka's log lines to the logger until stop.
func (r *runner) forwardLogs(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	for {
		select {
		case <-stop:
			return
		case ev := <-r.logs:
			level := slog.LevelDebug
			switch {
			case ev.Level <= 3:
				level = slog.LevelError
			case ev.Level == 4:
				level = slog.LevelWarn
			case ev.Level <= 6:
				level = slog.LevelInfo
			}
			r.log.Log(context.Background(), level, "librdkafka: "+ev.Message, "tag", ev.Tag, "client", ev.Name)
		}
	}
}
