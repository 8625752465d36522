package kafkago

// This file holds the Consumer: construction, Run, and one generation's
// life (assign, fetch, drain, commit, release).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Consumer consumes topics as a member of a consumer group, handles messages
// on many goroutines and commits, per partition, only offsets below which
// every message is handled. Create it with NewConsumer; call Run once at a
// time. Stats and Close may be called concurrently with Run.
type Consumer struct {
	brokers []string
	group   string
	topics  []string
	opts    *engine.Options
	cfg     *config // kafka-go's own settings (opts.Adapter)

	eng atomic.Pointer[engine.Engine[kafka.Message]]

	life engine.Lifecycle
}

// NewConsumer returns a consumer of topics for group, bootstrapping from
// brokers (host:port). It does not connect. It returns an error wrapping
// ErrInvalidConfig and naming the field for missing brokers, group or
// topics, and for out-of-range options.
func NewConsumer(brokers []string, group string, topics []string, opts ...Option) (*Consumer, error) {
	o, cfg, err := newOptions(brokers, group, topics, opts)
	if err != nil {
		return nil, err
	}
	return &Consumer{
		brokers: slices.Clone(brokers),
		group:   group,
		topics:  slices.Clone(topics),
		opts:    o,
		cfg:     cfg,
	}, nil
}

// Stats returns the statistics of the partitions this member owns now,
// sorted by topic and partition (nil when not running). Safe for concurrent
// use.
func (c *Consumer) Stats() []PartitionStats {
	if e := c.eng.Load(); e != nil {
		return partitionStats(e.Stats())
	}
	return nil
}

// Run joins the group and consumes until ctx ends, Close is called or,
// under StopOnError, a handler fails. handler is called concurrently (up to
// Concurrency calls at once) with messages of the partitions this member
// owns; a message is done when handler returns. On each rebalance and at
// the end, Run stops fetching, waits at most RevokeTimeout for in-flight
// messages, commits and releases the partitions; then it leaves the group
// (a dynamic member; one with WithInstanceID stays in it until its session
// times out).
// It returns nil after a clean shutdown (ctx ended or Close), the handler's
// error wrapped in ErrHandler under StopOnError, an error wrapping
// ErrAssign if an assigned partition cannot be taken, an error wrapping
// ErrClient for what retrying cannot fix (SASL authentication refused, TLS
// handshake failed, not authorized), an error wrapping ErrFenced when
// another member took this member's instance id (WithInstanceID),
// ErrRunning if already running and ErrClosed once Close was called.
// Transient errors (an unreachable cluster, a coordinator moving, a
// rebalance in progress, a deleted topic) are logged and retried with
// backoff until ctx ends. A Run that ends (ctx, Close) before the group ever answered returns an
// error wrapping ErrNeverJoined and the last connection or join error.
// Unreachable brokers and missing topics are logged at Warn once, then at
// most once a minute.
//
// Handlers get a context that ends only after the final drain, not when
// ctx ends. A handler still running RevokeTimeout after that is abandoned
// (logged): Run returns, the goroutine runs on until the handler returns,
// and its message, not committed, is delivered again later.
//
// RunBatch is the same with a handler that takes a batch of messages per
// call (WithBatch).
func (c *Consumer) Run(ctx context.Context, handler func(ctx context.Context, msg kafka.Message) error) error {
	if handler == nil {
		return fmt.Errorf("%w: handler is nil", ErrInvalidConfig)
	}
	return c.run(ctx, func(cfg engine.Config) *engine.Engine[kafka.Message] {
		return engine.New(cfg, engine.Handler[kafka.Message](handler), func(m kafka.Message) []byte { return m.Key })
	})
}

// RunBatch is Run with a handler that takes up to WithBatch's maxSize
// messages per call (default 100; a worker holding fewer waits up to maxWait,
// default 10ms, for more): one round trip to a database or an index for many
// messages. What a batch may hold follows WithOrdering: Unordered, any
// messages, across partitions; ByKey, several messages of a key in offset
// order, the key busy for the whole call; ByPartition, consecutive messages
// of one partition. The handler returns nil when every msg is done;
// &BatchError{Index: i, Err: err} when msgs[:i] are done and msgs[i] failed
// (msgs[i] goes through WithRetry and the dead letter like a single msg,
// Permanent(err) included; msgs[i+1:] are handed out again without an
// attempt counted, in key order); any other error (or a panic) fails every
// msg of the batch once. The handler must not keep the slice after it
// returned. Everything else (life cycle, options, Stats, Close, the errors
// returned, an error wrapping ErrInvalidConfig for a nil handler) is as for
// Run.
func (c *Consumer) RunBatch(ctx context.Context, handler func(ctx context.Context, msgs []kafka.Message) error) error {
	if handler == nil {
		return fmt.Errorf("%w: batch handler is nil", ErrInvalidConfig)
	}
	return c.run(ctx, func(cfg engine.Config) *engine.Engine[kafka.Message] {
		return engine.NewBatch(cfg, engine.BatchHandler[kafka.Message](handler), func(m kafka.Message) []byte { return m.Key })
	})
}

// run is Run and RunBatch, with mk the one place their engine
// differs.
func (c *Consumer) run(ctx context.Context, mk func(engine.Config) *engine.Engine[kafka.Message]) error {
	ctx, end, err := c.life.Begin(ctx)
	if err != nil {
		return err
	}
	// Deferred first, so it runs last: Close returns only when every other
	// deferred step (engine stop, connections closed) is done.
	defer end()

	transport := &kafka.Transport{
		DialTimeout: c.cfg.dialTimeout,
		MetadataTTL: 2 * time.Second,
		ClientID:    c.opts.ClientID,
		TLS:         c.cfg.tls,
		SASL:        c.cfg.sasl,
	}
	defer transport.CloseIdleConnections()
	client := &kafka.Client{Addr: kafka.TCP(c.brokers...), Transport: transport}

	ecfg := c.opts.Config.ForGroup(c.group)
	ecfg.FrozenAfter = c.opts.SessionTimeout
	if topic := c.opts.DeadLetterTopic; topic != "" {
		// Closed after the engine stopped (deferred first): its last
		// dead-letter call has returned by then.
		dl, err := c.newDeadLetter(topic)
		if err != nil {
			return err
		}
		defer dl.Close()
		ecfg.DeadLetter = func(ctx context.Context, m any, err error, attempts int) error {
			return dl.Produce(ctx, m.(kafka.Message), err, attempts)
		}
	}
	// Handle: a Close called from inside the handler does not wait for it.
	eng := mk(ecfg)
	eng.SetSize(messageSize)
	eng.Start(ctx)
	c.eng.Store(eng)
	defer func() {
		eng.Stop()
		c.eng.Store(nil)
	}()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	dialer := &kafka.Dialer{
		Timeout:       c.cfg.dialTimeout,
		DualStack:     true,
		ClientID:      c.opts.ClientID,
		TLS:           c.cfg.tls,
		SASLMechanism: c.cfg.sasl,
	}
	g := &groupRun{c: c, client: client, dialer: dialer, eng: eng, runCtx: runCtx, cancel: cancel,
		w: engine.NewWatch(ecfg, c.brokers, c.opts.RequestTimeout)}

	go func() {
		select {
		case <-eng.Fatal():
			cancel()
		case <-runCtx.Done():
		}
	}()

	stopWatch := g.w.WatchTopics(runCtx, g.missingTopics)
	backoff := g.newBackoff()
	var memberID string // the coordinator's id for this member; "" before the first join
	for runCtx.Err() == nil {
		gen, err := g.join(runCtx, &memberID)
		if errors.Is(err, errRejoin) {
			continue // the group moved on while joining; the coordinator paces the next join
		}
		if err != nil {
			if runCtx.Err() != nil {
				break
			}
			if g.failOn(g.whyJoinFailed(runCtx, err), "joining group "+strconv.Quote(c.group)) {
				break
			}
			g.joinFailed(err)
			backoff.Wait(runCtx)
			continue
		}
		backoff.Reset()
		gctx, endGen := context.WithCancel(runCtx)
		stopHeartbeats := g.heartbeats(gctx, gen, endGen)
		g.generation(gctx, gen)
		endGen()
		stopHeartbeats()
	}
	if c.cfg.instanceID == "" {
		g.leave(memberID) // a static member's partitions wait for its return
	}
	stopWatch()
	if err := eng.Err(); err != nil {
		return err
	}
	return g.w.End(g.err)
}

// Close stops a running Run (as if its ctx had ended) and waits until it
// has returned: in-flight messages drained (at most RevokeTimeout), commits
// made, group left (unless WithInstanceID). Close is final: a Run that had not yet started when
// Close was called (including one whose goroutine was started just before)
// returns ErrClosed without joining the group. Close returns nil, also
// when not running; it may be called any number of times, from any
// goroutine. Called from inside a handler (on the
// handler's own goroutine), Close starts the shutdown and returns at once,
// without waiting for the Run that waits for that very handler: the
// handler returns, its message is acked and committed by the final
// drain, and Run returns (wait for Run itself to know when). That holds in
// a handler of any Consumer: Close cannot tell them apart.
func (c *Consumer) Close() error {
	c.life.Close()
	return nil
}

// groupRun is the state of one Run.
// messageSize is what a message holds for MaxBufferedBytes: key, value and
// headers.
func messageSize(m *kafka.Message) int {
	n := len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}

type groupRun struct {
	c      *Consumer
	client *kafka.Client
	dialer *kafka.Dialer
	eng    *engine.Engine[kafka.Message]
	runCtx context.Context
	cancel context.CancelFunc // ends runCtx
	w      *engine.Watch      // mistakes.go

	failOnce sync.Once
	err      error       // why Run stops, besides a handler error; set before cancel
	isFenced atomic.Bool // another member took the instance id (static.go)

	assignedFrom assignedFromSlot // what this member last assigned from, as the leader
}

// failOn stops Run (see fail) with err wrapped in ErrClient when err is one
// retrying cannot fix, and reports whether it did; doing names what failed.
func (g *groupRun) failOn(err error, doing string) bool {
	why := clientFailure(err)
	if why == "" {
		return false
	}
	g.fail(fmt.Errorf("%w: %s: %s: %w", ErrClient, doing, why, err))
	return true
}

// fail makes Run drain, commit, leave the group and return err.
func (g *groupRun) fail(err error) {
	g.failOnce.Do(func() {
		g.err = err
		g.c.opts.Logger.Error("kafkago: stopping", "group", g.c.group, "error", err)
		g.cancel()
	})
}

// generation runs one generation: assign, fetch until the generation or Run
// ends, then drain, commit and release.
func (g *groupRun) generation(gctx context.Context, gen *generation) {
	c := g.c
	log := c.opts.Logger
	var owned []TopicPartition
	for topic, parts := range gen.Assignments {
		for _, p := range parts {
			owned = append(owned, TopicPartition{Topic: topic, Partition: p})
		}
	}
	slices.SortFunc(owned, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	log.Debug("kafkago: generation started", "group", c.group, "generation", gen.ID, "member", gen.MemberID, "partitions", len(owned))
	g.w.Assigned(owned)
	if c.cfg.onGeneration != nil {
		c.cfg.onGeneration(gen.MemberID, gen.ID, slices.Clone(owned))
	}

	sess := g.eng.NewSession(g.commitFunc(gen))
	// fctx ends the fetch loops: generation end, Run end, or fatal error.
	fctx, stopFetch := context.WithCancel(g.runCtx)
	stop := context.AfterFunc(gctx, stopFetch)
	defer stop()

	var wg sync.WaitGroup
	// As the leader, rejoin when a partition count assigned from changes:
	// ending this function ends the generation.
	if from := g.assignedFrom.Swap(nil); from != nil {
		wg.Go(func() {
			if g.watchPartitions(fctx, from) {
				stopFetch()
			}
		})
	}
	if len(owned) > 0 {
		starts, err := g.assignments(fctx, gen, owned)
		if err == nil {
			fetched := map[*engine.Part]*atomic.Int64{}
			for _, tp := range owned {
				st, ok := starts[tp]
				if !ok {
					continue // its topic is gone (logged): nothing to fetch
				}
				p, err := sess.Assign(tp, st.start, st.meta, st.logEnd)
				if err != nil {
					// The partition would stay owned by this member and never
					// be fetched: stop instead (this is a bug, not a state a
					// rejoin would repair).
					g.fail(fmt.Errorf("%w: %s[%d]: %w", ErrAssign, tp.Topic, tp.Partition, err))
					break
				}
				at := new(atomic.Int64)
				at.Store(time.Now().UnixNano())
				fetched[p] = at
				wg.Go(func() { g.fetchLoop(fctx, sess, p, at) })
			}
			wg.Go(func() { g.refreshLogEnds(fctx, fetched) })
		}
	}
	<-fctx.Done()
	// The member keeps heartbeating (heartbeats) while the fetch loops stop
	// and the drain runs, or a drain longer than the session timeout would
	// get it evicted and its final commit refused.
	wg.Wait()
	shutdown := g.runCtx.Err() != nil
	fenced := g.isFenced.Load()
	if fenced {
		// Another member owns them under this instance id: no commit.
		sess.Lose(owned...)
	}
	sess.Close(context.Background())
	log.Debug("kafkago: generation ended", "group", c.group, "generation", gen.ID, "member", gen.MemberID, "shutdown", shutdown, "fenced", fenced)
	g.w.Revoked(owned, fenced)
}

// heartbeats heartbeats gen's member to the group coordinator every
// heartbeat interval until the returned stop is called. An answer that the
// generation is over (RebalanceInProgress, IllegalGeneration,
// UnknownMemberId, FencedInstanceID), or no answer for a session timeout,
// calls over. It keeps heartbeating through RebalanceInProgress while the
// generation drains: the coordinator keeps a member that heartbeats during a
// rebalance until the rebalance timeout, which RevokeTimeout is validated to
// be below. It stops when the coordinator no longer knows the member or
// generation: nothing left to keep alive. gctx is the generation's context
// (ended: draining).
func (g *groupRun) heartbeats(gctx context.Context, gen *generation, over func()) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(g.c.opts.HeartbeatInterval)
		defer t.Stop()
		var coord net.Addr
		answered := time.Now()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := g.heartbeat(ctx, gen, &coord)
			switch {
			case err == nil:
				answered = time.Now()
			case errors.Is(err, kafka.RebalanceInProgress):
				answered = time.Now()
				over()
			case errors.Is(err, kafka.UnknownMemberId), errors.Is(err, kafka.IllegalGeneration), fencedBy(err):
				if fencedBy(err) {
					g.fenced(err) // before over: Run must not rejoin
				} else if gctx.Err() != nil {
					g.c.opts.Logger.Warn("kafkago: member left the group while draining, the final commit will be refused",
						"group", gen.GroupID, "generation", gen.ID, "member", gen.MemberID, "error", err)
				}
				over()
				return
			default:
				if ctx.Err() == nil {
					g.c.opts.Logger.Debug("kafkago: heartbeat failed", "group", gen.GroupID, "error", err)
				}
				if time.Since(answered) > g.c.opts.SessionTimeout {
					over() // the coordinator has evicted this member by now
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// heartbeat sends one heartbeat for gen to the coordinator (looked up once
// into *coord, again after it moved) and returns the error of the answer.
func (g *groupRun) heartbeat(ctx context.Context, gen *generation, coord *net.Addr) error {
	rctx, cancel := context.WithTimeout(ctx, g.c.opts.HeartbeatInterval+g.c.cfg.dialTimeout)
	defer cancel()
	if *coord == nil {
		fc, err := g.client.FindCoordinator(rctx, &kafka.FindCoordinatorRequest{Key: gen.GroupID, KeyType: kafka.CoordinatorKeyTypeConsumer})
		if err == nil {
			err = fc.Error
		}
		if err != nil {
			return fmt.Errorf("finding the coordinator: %w", err)
		}
		*coord = kafka.TCP(net.JoinHostPort(fc.Coordinator.Host, strconv.Itoa(fc.Coordinator.Port)))
	}
	resp, err := g.client.Heartbeat(rctx, &kafka.HeartbeatRequest{
		Addr: *coord, GroupID: gen.GroupID, GenerationID: gen.ID, MemberID: gen.MemberID,
		GroupInstanceID: g.c.cfg.instanceID,
	})
	if err == nil {
		err = heartbeatError(resp)
	}
	if errors.Is(err, kafka.NotCoordinatorForGroup) || errors.Is(err, kafka.GroupCoordinatorNotAvailable) {
		*coord = nil // moved: look it up again
	}
	return err
}

// heartbeatError is the coordinator's answer to a heartbeat. kafka-go
// v0.4.51 declares the Heartbeat response's fields in the wrong order for
// versions 1 to 4 (error code, then throttle time; Kafka sends the throttle
// time first), and every broker since Kafka 0.11 negotiates one of those:
// resp.Error is then the throttle time's high half (0) and the error code
// lands in the low 16 bits of resp.Throttle (in milliseconds).
// TestHeartbeatErrorsAreSeen fails if a kafka-go upgrade changes that.
func heartbeatError(resp *kafka.HeartbeatResponse) error {
	if resp.Error != nil {
		return resp.Error
	}
	return kafkaError(int16(uint16(resp.Throttle.Milliseconds())))
}

// leave leaves the group as memberID (nothing when it never joined). A
// failure is logged: the coordinator evicts the member after the session
// timeout anyway.
func (g *groupRun) leave(memberID string) {
	if memberID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.c.opts.RequestTimeout)
	defer cancel()
	resp, err := g.client.LeaveGroup(ctx, &kafka.LeaveGroupRequest{
		GroupID: g.c.group, Members: []kafka.LeaveGroupRequestMember{{ID: memberID}},
	})
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		g.c.opts.Logger.Debug("kafkago: leaving the group failed", "group", g.c.group, "member", memberID, "error", err)
	}
}

type startPoint struct {
	start  int64
	meta   string
	logEnd int64
}

// assignments reads the committed offsets and metadata of owned and their
// log start and end, retrying with backoff until ctx ends or the error is
// one retrying cannot fix (Run then stops). A failure is logged at Warn once
// per generation, naming the partitions, the retries at Debug. Partitions
// that do not exist (their topic was deleted since the assignment) are left
// out, logged.
func (g *groupRun) assignments(ctx context.Context, gen *generation, owned []TopicPartition) (map[TopicPartition]startPoint, error) {
	backoff := g.newBackoff()
	logged := false
	var failures engine.Failures
	for {
		existing, err := g.existing(ctx, owned, !logged)
		logged = logged || err == nil
		var out map[TopicPartition]startPoint
		if err == nil {
			out, err = g.tryAssignments(ctx, gen, existing)
		}
		if err == nil {
			failures.Recovered(g.c.opts.Logger, "kafkago: committed offsets read, consuming the partitions", "group", g.c.group,
				"partitions", engine.FormatPartitions(owned))
			return out, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if g.failOn(err, "reading committed offsets") {
			return nil, err
		}
		failures.Failed(ctx, g.c.opts.Logger, "kafkago: reading committed offsets failed, retrying with backoff", err,
			"group", g.c.group, "partitions", engine.FormatPartitions(owned))
		backoff.Wait(ctx)
	}
}

// existing returns the partitions of owned that exist now, logging the
// others if log is set.
func (g *groupRun) existing(ctx context.Context, owned []TopicPartition, log bool) ([]TopicPartition, error) {
	var topics []string
	for _, tp := range owned {
		topics = append(topics, tp.Topic)
	}
	slices.Sort(topics)
	_, counts, err := g.readPartitions(ctx, slices.Compact(topics))
	if err != nil {
		return nil, err
	}
	out := make([]TopicPartition, 0, len(owned))
	for _, tp := range owned {
		if int(tp.Partition) < counts[tp.Topic] {
			out = append(out, tp)
		} else if log {
			g.c.opts.Logger.Warn("kafkago: assigned partition does not exist (topic deleted?), not fetching it",
				"group", g.c.group, "topic", tp.Topic, "partition", tp.Partition)
		}
	}
	return out, nil
}

func (g *groupRun) tryAssignments(ctx context.Context, gen *generation, owned []TopicPartition) (map[TopicPartition]startPoint, error) {
	if len(owned) == 0 {
		return nil, nil
	}
	byTopic := map[string][]int{}
	lo := map[string][]kafka.OffsetRequest{}
	for _, tp := range owned {
		byTopic[tp.Topic] = append(byTopic[tp.Topic], int(tp.Partition))
		lo[tp.Topic] = append(lo[tp.Topic], kafka.FirstOffsetOf(int(tp.Partition)), kafka.LastOffsetOf(int(tp.Partition)))
	}
	rctx, cancel := context.WithTimeout(ctx, g.c.opts.RequestTimeout)
	defer cancel()
	opts := g.c.opts
	fr, err := g.client.OffsetFetch(rctx, &kafka.OffsetFetchRequest{GroupID: gen.GroupID, Topics: byTopic})
	if err != nil {
		return nil, err
	}
	if fr.Error != nil {
		return nil, fr.Error
	}
	lr, err := g.client.ListOffsets(rctx, &kafka.ListOffsetsRequest{Topics: lo})
	if err != nil {
		return nil, err
	}
	// Under read_committed "latest" is the last stable offset, not the high
	// watermark: starting at the high watermark would skip the records of
	// transactions still open, once they commit.
	var stable *kafka.ListOffsetsResponse
	if opts.ReadCommitted && opts.StartOffset == Latest {
		latest := map[string][]kafka.OffsetRequest{}
		for _, tp := range owned {
			latest[tp.Topic] = append(latest[tp.Topic], kafka.LastOffsetOf(int(tp.Partition)))
		}
		stable, err = g.client.ListOffsets(rctx, &kafka.ListOffsetsRequest{Topics: latest, IsolationLevel: kafka.ReadCommitted})
		if err != nil {
			return nil, err
		}
	}
	out := make(map[TopicPartition]startPoint, len(owned))
	for topic, parts := range fr.Topics {
		for _, p := range parts {
			if p.Error != nil {
				return nil, fmt.Errorf("offset fetch %s[%d]: %w", topic, p.Partition, p.Error)
			}
			out[TopicPartition{Topic: topic, Partition: int32(p.Partition)}] = startPoint{start: p.CommittedOffset, meta: p.Metadata, logEnd: -1}
		}
	}
	for _, tp := range owned {
		sp, ok := out[tp]
		if !ok {
			sp = startPoint{start: -1, logEnd: -1}
		}
		po, err := partitionOffsets(lr, tp)
		if err != nil {
			return nil, err
		}
		sp.logEnd = po.LastOffset
		reset := po.FirstOffset // the StartOffset policy
		if opts.StartOffset == Latest {
			reset = po.LastOffset
			if stable != nil {
				so, err := partitionOffsets(stable, tp)
				if err != nil {
					return nil, err
				}
				reset = so.LastOffset
			}
		}
		switch {
		case sp.start < 0:
			sp.start, sp.meta = reset, ""
		case sp.start < po.FirstOffset || sp.start > po.LastOffset:
			// Below the log start: deleted by retention. Above the log end:
			// the topic was recreated or its log truncated. Either way the
			// commit says nothing about this log and a fetch there would be
			// out of range: apply the StartOffset policy, like the Java
			// client's auto.offset.reset.
			opts.Logger.Warn("kafkago: committed offset out of range, applying the start offset policy",
				"topic", tp.Topic, "partition", tp.Partition, "committed", sp.start,
				"log_start", po.FirstOffset, "log_end", po.LastOffset, "policy", opts.StartOffset, "start", reset)
			sp.start, sp.meta = reset, ""
		}
		out[tp] = sp
	}
	return out, nil
}

// partitionOffsets finds tp's answer in a ListOffsets response.
func partitionOffsets(r *kafka.ListOffsetsResponse, tp TopicPartition) (*kafka.PartitionOffsets, error) {
	for i := range r.Topics[tp.Topic] {
		if po := &r.Topics[tp.Topic][i]; po.Partition == int(tp.Partition) {
			if po.Error != nil {
				return nil, fmt.Errorf("list offsets %s[%d]: %w", tp.Topic, tp.Partition, po.Error)
			}
			return po, nil
		}
	}
	return nil, fmt.Errorf("list offsets %s[%d]: no answer", tp.Topic, tp.Partition)
}

// commitFunc commits through kafka.Client.OffsetCommit, fenced by the
// generation id and member id, and reads every per-partition error: a stale
// generation comes back as a per-partition IllegalGeneration with a nil
// request error.
func (g *groupRun) commitFunc(gen *generation) engine.CommitFunc {
	return func(ctx context.Context, offs []engine.Offset) ([]error, error) {
		req := &kafka.OffsetCommitRequest{
			GroupID:      gen.GroupID,
			GenerationID: int(gen.ID),
			MemberID:     gen.MemberID,
			InstanceID:   g.c.cfg.instanceID,
			Topics:       map[string][]kafka.OffsetCommit{},
		}
		for _, o := range offs {
			req.Topics[o.TP.Topic] = append(req.Topics[o.TP.Topic], kafka.OffsetCommit{
				Partition: int(o.TP.Partition), Offset: o.Offset, Metadata: o.Metadata,
			})
		}
		resp, err := g.client.OffsetCommit(ctx, req)
		var errs []error
		if err == nil {
			errs = make([]error, len(offs))
			for i, o := range offs {
				errs[i] = fmt.Errorf("offset commit %s[%d]: no answer from the broker", o.TP.Topic, o.TP.Partition)
				for _, p := range resp.Topics[o.TP.Topic] {
					if p.Partition == int(o.TP.Partition) {
						errs[i] = p.Error
						switch {
						case fencedBy(p.Error):
							g.fenced(p.Error)
							errs[i] = fmt.Errorf("%w: offset commit %s[%d]: %w", engine.ErrFenced, o.TP.Topic, o.TP.Partition, p.Error)
						case errors.Is(p.Error, kafka.IllegalGeneration), errors.Is(p.Error, kafka.UnknownMemberId):
							// The generation is over: retrying cannot land it.
							errs[i] = fmt.Errorf("%w: offset commit %s[%d]: %w", engine.ErrFenced, o.TP.Topic, o.TP.Partition, p.Error)
						case p.Error != nil:
							errs[i] = fmt.Errorf("offset commit %s[%d]: %w", o.TP.Topic, o.TP.Partition, p.Error)
						}
					}
				}
			}
		}
		if f := g.c.cfg.onCommit; f != nil {
			f(gen.MemberID, gen.ID, offs, errs)
		}
		// Authorization refused (or the like) stops Run; anything else is
		// retried at the next commit tick by the engine.
		if err != nil {
			g.failOn(err, "committing offsets")
		}
		for _, e := range errs {
			if e != nil && g.failOn(e, "committing offsets") {
				break
			}
		}
		return errs, err
	}
}

func (g *groupRun) newBackoff() *engine.Backoff {
	b := engine.NewRetryBackoff(g.c.opts.RetryBackoff)
	b.OnWait = g.c.cfg.onBackoff
	return b
}
