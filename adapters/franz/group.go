package franz

// This file holds one Run's group side: the kgo client's options, the
// rebalance callbacks (assign, revoke, lose) and the commit function.
//
// Goroutines. kgo calls the callbacks on its group goroutine. With
// BlockRebalanceOnPoll, a revoke or loss waits until the poll loop calls
// AllowRebalance, which it does after every poll once it has handed the
// records out (never blocking on a full window), so the callbacks never
// run while the poll loop touches the partitions; r.mu makes that explicit.
// The engine's commit loop calls commit on a goroutine of its own; kgo
// orders commits and stamps each with the current generation and member.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// pstate is an owned partition as the poll loop sees it.
type pstate struct {
	tp     TopicPartition
	part   *engine.Part
	epochs *epochLog // leader epochs by offset; see runner.epochs

	lastEpoch   int32 // the epoch of the last record handed out (-1 none), on the poll loop
	staleLogged bool  // records below the position were dropped (logged once)
}

// epochLog is a partition's leader epochs by offset: the first offset
// handed to the engine in each epoch, in offset order (one entry per leader
// change). The poll loop adds; a commit reads the epoch of the record
// before the offset it commits, as Kafka's consumers do, and drops the
// entries that no later commit can need (commits of a partition never go
// down). Safe for concurrent use.
type epochLog struct {
	mu  sync.Mutex
	ent []epochStart
}

type epochStart struct {
	offset int64
	epoch  int32
}

func (l *epochLog) add(offset int64, epoch int32) {
	l.mu.Lock()
	l.ent = append(l.ent, epochStart{offset, epoch})
	l.mu.Unlock()
}

// before returns the epoch of the record at offset-1, or -1 if no record
// below offset was handed out in this assignment.
func (l *epochLog) before(offset int64) int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := len(l.ent)
	for i > 0 && l.ent[i-1].offset > offset-1 {
		i--
	}
	if i == 0 {
		return -1
	}
	e := l.ent[i-1].epoch
	l.ent = l.ent[i-1:] // the entries before it cover offsets no commit will name again
	return e
}

type runner struct {
	c    *Consumer
	cfg  *config
	opts *engine.Options
	log  *slog.Logger
	cl   *kgo.Client
	eng  *engine.Engine[*kgo.Record]
	sess *engine.Session[*kgo.Record]
	w    *engine.Watch // mistakes.go

	mu      sync.Mutex                    // the poll loop's state, shared with the callbacks
	parts   map[TopicPartition]*pstate    // owned partitions
	paused  int                           // partitions paused in kgo (ApplyFlow)
	fetched map[TopicPartition]commitInfo // the commits read at the assignment in progress
	ramp    fetchRamp                     // the fetch sizes asked for
	// unread holds the partitions whose committed offset came back with a
	// partition error, until they are taken (see take).
	unread map[TopicPartition]error

	epMu   sync.Mutex
	epochs map[TopicPartition]*epochLog // for commit: outlives the pstate until the revoke's commit

	failOnce sync.Once
	err      error // why Run stops, besides a handler error; set before stop
	stop     context.CancelFunc

	// stopClient ends the kgo client's context (static.go); set by
	// newRunner, called by Run's end at the latest.
	stopClient context.CancelFunc
	clientCtx  context.Context
}

type commitInfo struct {
	offset int64
	meta   string
}

func newRunner(c *Consumer, eng *engine.Engine[*kgo.Record]) *runner {
	r := &runner{
		c:      c,
		cfg:    c.cfg,
		opts:   c.opts,
		log:    c.opts.Logger,
		eng:    eng,
		parts:  make(map[TopicPartition]*pstate),
		epochs: make(map[TopicPartition]*epochLog),
		unread: make(map[TopicPartition]error),
	}
	r.clientCtx, r.stopClient = context.WithCancel(context.Background())
	return r
}

// clientOpts are the kgo client's options: the shared ones, the user's,
// then the Consumer's own, which no earlier option can undo.
func (r *runner) clientOpts() []kgo.Opt {
	return slices.Concat(sharedOpts(r.opts, r.c.brokers), r.cfg.extra, []kgo.Opt{
		kgo.ConsumerGroup(r.c.group),
		kgo.ConsumeTopics(r.c.topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		// Transaction markers come back as control records: the exact
		// offsets to step over, including a marker at the end of a
		// partition (kgo does not hand out a fetch that holds only a
		// marker, so the high watermark cannot tell a trailing marker from
		// a response cut short by its size).
		kgo.KeepControlRecords(),
		kgo.OnOffsetsFetched(r.onFetched),
		kgo.AdjustFetchOffsetsFn(r.onAssigned),
		kgo.OnPartitionsRevoked(r.onRevoked),
		kgo.OnPartitionsLost(r.onLost),
		kgo.OnPartitionsAssigned(r.onJoined),
		kgo.WithHooks(newClientHook{r}, watchHook{r.w}, fenceHook{r}),
	}, r.staticOpts())
}

// newClientHook sets r.cl when kgo creates the client, before it starts
// any goroutine (and so before any callback can run).
type newClientHook struct{ r *runner }

func (h newClientHook) OnNewClient(cl *kgo.Client) {
	h.r.cl = cl
	h.r.ramp.init(cl)
}

// fail makes Run drain, commit, leave the group and return err.
func (r *runner) fail(err error) {
	r.failOnce.Do(func() {
		r.err = err
		r.log.Error("franz: stopping", "group", r.c.group, "error", err)
		r.stop()
	})
}

func sortTPs(tps []TopicPartition) {
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
}

func toTPs(m map[string][]int32) []TopicPartition {
	var tps []TopicPartition
	for t, ps := range m {
		for _, p := range ps {
			tps = append(tps, TopicPartition{Topic: t, Partition: p})
		}
	}
	sortTPs(tps)
	return tps
}

func tpMap(tps ...TopicPartition) map[string][]int32 {
	m := make(map[string][]int32)
	for _, tp := range tps {
		m[tp.Topic] = append(m[tp.Topic], tp.Partition)
	}
	return m
}

// onFetched keeps the committed offsets and their metadata of the
// partitions being assigned, for onAssigned.
func (r *runner) onFetched(_ context.Context, _ *kgo.Client, resp *kmsg.OffsetFetchResponse) error {
	got := make(map[TopicPartition]commitInfo)
	unread := make(map[TopicPartition]error)
	add := func(t string, p int32, off int64, meta *string, code int16) {
		if code != 0 {
			if err := kerr.ErrorForCode(code); !errors.Is(err, kerr.UnstableOffsetCommit) { // kgo retries that one
				unread[TopicPartition{Topic: t, Partition: p}] = err
			}
			return
		}
		if off < 0 {
			return
		}
		ci := commitInfo{offset: off}
		if meta != nil {
			ci.meta = *meta
		}
		got[TopicPartition{Topic: t, Partition: p}] = ci
	}
	for _, g := range resp.Groups {
		for _, t := range g.Topics {
			for _, p := range t.Partitions {
				add(t.Topic, p.Partition, p.Offset, p.Metadata, p.ErrorCode)
			}
		}
	}
	if len(resp.Groups) == 0 {
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				add(t.Topic, p.Partition, p.Offset, p.Metadata, p.ErrorCode)
			}
		}
	}
	r.mu.Lock()
	r.fetched = got
	maps.Copy(r.unread, unread)
	r.mu.Unlock()
	return nil
}

// onAssigned takes the newly assigned partitions (kgo's
// AdjustFetchOffsetsFn, called after onFetched, before fetching starts):
// it picks each start (the commit, or the StartOffset policy when there is
// none or it is outside the log), registers the partition with the engine
// (which restores the done offsets from the commit metadata) and tells kgo
// to fetch from exactly there.
func (r *runner) onAssigned(ctx context.Context, offsets map[string]map[int32]kgo.Offset) (map[string]map[int32]kgo.Offset, error) {
	var tps []TopicPartition
	for t, ps := range offsets {
		for p := range ps {
			tps = append(tps, TopicPartition{Topic: t, Partition: p})
		}
	}
	sortTPs(tps)
	r.mu.Lock()
	fetched := r.fetched
	r.fetched = nil
	r.mu.Unlock()
	if len(tps) == 0 {
		return offsets, nil
	}
	// The group answered. kgo calls OnPartitionsAssigned (onJoined) only
	// once the poll loop allows a rebalance, so records of these partitions
	// can be fetched, handled and Run stopped before it: without this, Run
	// could end with ErrNeverJoined after handling records.
	r.w.Joined()
	starts, err := r.starts(ctx, tps, fetched)
	if err != nil && fatal(err) {
		err = fmt.Errorf("%w: reading the log offsets of %s: %w", ErrAssign, engine.FormatPartitions(tps), err)
		r.fail(err)
		return nil, err
	}
	if err != nil {
		r.log.Warn("franz: reading log offsets for an assignment failed, kgo rejoins", "group", r.c.group, "error", err)
		return nil, err
	}
	out := make(map[string]map[int32]kgo.Offset)
	for _, tp := range tps {
		sp := starts[tp]
		part, err := r.sess.Assign(tp, sp.start, sp.meta, sp.logEnd)
		if err != nil {
			err = fmt.Errorf("%w: %s[%d]: %w", ErrAssign, tp.Topic, tp.Partition, err)
			r.fail(err)
			return nil, err
		}
		ep := new(epochLog)
		r.epMu.Lock()
		r.epochs[tp] = ep
		r.epMu.Unlock()
		r.mu.Lock()
		r.parts[tp] = &pstate{tp: tp, part: part, epochs: ep, lastEpoch: -1}
		delete(r.unread, tp)
		r.mu.Unlock()
		if out[tp.Topic] == nil {
			out[tp.Topic] = make(map[int32]kgo.Offset)
		}
		out[tp.Topic][tp.Partition] = kgo.NewOffset().At(sp.start)
	}
	r.mu.Lock()
	r.ramp.restart(r.cl) // the new partitions' first fetches are small
	r.mu.Unlock()
	// A partition paused when it was revoked stays paused in kgo: a new
	// assignment starts with room.
	r.cl.ResumeFetchPartitions(tpMap(tps...))
	if f := r.cfg.onAssign; f != nil {
		member, gen := r.cl.GroupMetadata()
		f(member, gen, tps)
	}
	return out, nil
}

// onRevoked gives up partitions (a rebalance, or the end of Run): it drops
// the records not handed out yet, waits at most RevokeTimeout for the
// in-flight ones, commits synchronously and closes the partitions.
func (r *runner) onRevoked(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	r.release(toTPs(m), false)
}

// onLost drops partitions whose assignment was lost (session timeout,
// fenced generation): another member may own them already, so nothing is
// committed for them.
func (r *runner) onLost(_ context.Context, _ *kgo.Client, m map[string][]int32) {
	r.release(toTPs(m), true)
}

func (r *runner) release(tps []TopicPartition, lost bool) {
	if len(tps) == 0 {
		return
	}
	if f := r.cfg.onRevokeStart; f != nil {
		f(tps, lost)
	}
	r.mu.Lock()
	for _, tp := range tps {
		if st := r.parts[tp]; st != nil && st.part.FetchPaused() {
			r.paused--
		}
		delete(r.parts, tp)
	}
	r.mu.Unlock()
	r.cl.ResumeFetchPartitions(tpMap(tps...))
	r.w.Revoked(tps, lost)
	if lost {
		r.sess.Lose(tps...)
	} else {
		r.sess.Revoke(context.Background(), tps...)
	}
	r.epMu.Lock()
	for _, tp := range tps {
		delete(r.epochs, tp)
	}
	r.epMu.Unlock()
	if f := r.cfg.onRevoke; f != nil {
		f(tps, lost)
	}
}

type startPoint struct {
	start  int64
	meta   string
	logEnd int64
}

// starts reads the log start and end of tps and picks where each starts,
// retrying with backoff until ctx (the assignment) ends. A failure is
// logged at Warn once per assignment, naming the partitions; the retries at
// Debug, the recovery at Info. An error retrying cannot fix (fatal:
// authentication, authorization) is returned at once: onAssigned ends Run
// with it.
func (r *runner) starts(ctx context.Context, tps []TopicPartition, fetched map[TopicPartition]commitInfo) (map[TopicPartition]startPoint, error) {
	backoff := engine.NewRetryBackoff(r.opts.RetryBackoff)
	var failures engine.Failures
	for {
		out, err := r.tryStarts(ctx, tps, fetched)
		if err == nil {
			failures.Recovered(r.log, "franz: log offsets read, consuming the partitions", "group", r.c.group,
				"partitions", engine.FormatPartitions(tps))
		}
		if err == nil || ctx.Err() != nil || fatal(err) {
			return out, err
		}
		failures.Failed(ctx, r.log, "franz: reading log offsets failed, retrying with backoff", err,
			"group", r.c.group, "partitions", engine.FormatPartitions(tps))
		if !backoff.Wait(ctx) {
			return nil, ctx.Err()
		}
	}
}

func (r *runner) tryStarts(ctx context.Context, tps []TopicPartition, fetched map[TopicPartition]commitInfo) (map[TopicPartition]startPoint, error) {
	ctx, cancel := context.WithTimeout(ctx, r.opts.RequestTimeout)
	defer cancel()
	// The log starts and ends (and, for Latest under read_committed, the
	// last stable offsets: starting at the high watermark would skip the
	// records of transactions still open, once they commit), concurrently.
	var first, end, latest map[TopicPartition]int64
	var errFirst, errEnd, errLatest error
	var wg sync.WaitGroup
	wg.Go(func() { first, errFirst = r.listOffsets(ctx, tps, -2, 0) })
	wg.Go(func() { end, errEnd = r.listOffsets(ctx, tps, -1, 0) })
	stable := r.opts.ReadCommitted && r.opts.StartOffset == Latest
	if stable {
		wg.Go(func() { latest, errLatest = r.listOffsets(ctx, tps, -1, 1) })
	}
	wg.Wait()
	for _, err := range []error{errFirst, errEnd, errLatest} {
		if fatal(err) {
			return nil, err // the reads of the same partitions fail alike: one is enough
		}
	}
	if err := errors.Join(errFirst, errEnd, errLatest); err != nil {
		return nil, err
	}
	if !stable {
		latest = end
	}
	out := make(map[TopicPartition]startPoint, len(tps))
	for _, tp := range tps {
		reset := first[tp]
		if r.opts.StartOffset == Latest {
			reset = latest[tp]
		}
		sp := startPoint{start: -1, logEnd: end[tp]}
		if ci, ok := fetched[tp]; ok {
			sp.start, sp.meta = ci.offset, ci.meta
		}
		switch {
		case sp.start < 0:
			sp.start, sp.meta = reset, ""
		case sp.start < first[tp]:
			r.log.Warn("franz: committed offset below log start, starting at log start",
				"topic", tp.Topic, "partition", tp.Partition, "committed", sp.start, "log_start", first[tp])
			sp.start, sp.meta = first[tp], ""
		case sp.start > end[tp]:
			r.log.Warn("franz: committed offset above log end (topic recreated or truncated?), applying the start offset policy",
				"topic", tp.Topic, "partition", tp.Partition, "committed", sp.start, "log_end", end[tp], "start", reset)
			sp.start, sp.meta = reset, ""
		}
		out[tp] = sp
	}
	return out, nil
}

// listOffsets asks the partitions' leaders for the offset at timestamp
// (-2 log start, -1 log end) under isolation (0 uncommitted, 1 committed).
func (r *runner) listOffsets(ctx context.Context, tps []TopicPartition, timestamp int64, isolation int8) (map[TopicPartition]int64, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	req.IsolationLevel = isolation
	for t, ps := range tpMap(tps...) {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		for _, p := range ps {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition = p
			rp.Timestamp = timestamp
			rp.CurrentLeaderEpoch = -1
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := make(map[TopicPartition]int64, len(tps))
	var failed map[error][]TopicPartition // the partitions answered with each error
	var errs []error                      // the errors, in the order first seen
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			tp := TopicPartition{Topic: t.Topic, Partition: p.Partition}
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				if failed == nil {
					failed = make(map[error][]TopicPartition)
				}
				if failed[err] == nil {
					errs = append(errs, err)
				}
				failed[err] = append(failed[err], tp)
				continue
			}
			out[tp] = p.Offset
		}
	}
	if len(errs) > 0 {
		for i, err := range errs {
			errs[i] = fmt.Errorf("list offsets %s: %w", engine.FormatPartitions(failed[err]), err)
		}
		return nil, errors.Join(errs...)
	}
	for _, tp := range tps {
		if _, ok := out[tp]; !ok {
			return nil, fmt.Errorf("list offsets %s[%d]: no answer", tp.Topic, tp.Partition)
		}
	}
	return out, nil
}

// commit is the engine's CommitFunc: one CommitOffsetsSync (fenced by kgo
// with the current generation and member id), each offset with the leader
// epoch of the record before it (the last one it covers) and, through a
// PreCommitFnContext hook, its own commit metadata (kgo would write the
// member id). Every per-partition error is read.
func (r *runner) commit(ctx context.Context, offs []engine.Offset) ([]error, error) {
	m := make(map[string]map[int32]kgo.EpochOffset)
	meta := make(map[TopicPartition]string, len(offs))
	r.epMu.Lock()
	for _, o := range offs {
		epoch := int32(-1)
		if ep := r.epochs[o.TP]; ep != nil {
			epoch = ep.before(o.Offset)
		}
		if m[o.TP.Topic] == nil {
			m[o.TP.Topic] = make(map[int32]kgo.EpochOffset)
		}
		m[o.TP.Topic][o.TP.Partition] = kgo.EpochOffset{Epoch: epoch, Offset: o.Offset}
		meta[o.TP] = o.Metadata
	}
	r.epMu.Unlock()
	// The member these offsets were decided for. kgo stamps the member id
	// and generation when it sends, which can be long after this call: a
	// commit waiting in kgo (for a join or sync in progress, a commit
	// before it, a process frozen past its session timeout) goes out under
	// the membership the client has then. If the member was evicted and
	// rejoined under a new id meanwhile, its old partitions may be another
	// member's: the coordinator would accept the commit and take their
	// commit back (chaos -faults, franz cooperative: partitions 1 and 2
	// committed 2208 and 2589 after 2682 and 3086, 100 ms after a frozen
	// member woke). kgo meets the eviction inside the join (JoinGroup
	// answers UNKNOWN_MEMBER_ID: it rejoins under a new id without calling
	// OnPartitionsLost, so the engine does not cancel the commit). Such a
	// commit is not sent (TestCommitNotSentUnderANewMember).
	member0, _ := r.cl.GroupMetadata()
	if f := r.cfg.onCommitMade; f != nil {
		f(member0)
	}
	ctx = kgo.PreCommitFnContext(ctx, func(req *kmsg.OffsetCommitRequest) error {
		if req.MemberID != member0 {
			return fmt.Errorf("%w: the member was %q when the commit was made and is %q now", errMemberChanged, member0, req.MemberID)
		}
		for i := range req.Topics {
			t := &req.Topics[i]
			for j := range t.Partitions {
				if md, ok := meta[TopicPartition{Topic: t.Topic, Partition: t.Partitions[j].Partition}]; ok {
					t.Partitions[j].Metadata = &md
				}
			}
		}
		return nil
	})
	var (
		errs           []error
		rerr           error
		member         string
		generation     int32
		requestedNames = map[[16]byte]string{}
		fencedBy       error // a FENCED_INSTANCE_ID answer
	)
	r.cl.CommitOffsetsSync(ctx, m, func(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		member, generation = req.MemberID, req.Generation
		if err != nil {
			rerr = err
			return
		}
		for _, t := range req.Topics {
			requestedNames[t.TopicID] = t.Topic
		}
		got := make(map[TopicPartition]error)
		for _, t := range resp.Topics {
			name := t.Topic
			if name == "" {
				name = requestedNames[t.TopicID]
			}
			for _, p := range t.Partitions {
				got[TopicPartition{Topic: name, Partition: p.Partition}] = kerr.ErrorForCode(p.ErrorCode)
			}
		}
		errs = make([]error, len(offs))
		for i, o := range offs {
			e, ok := got[o.TP]
			switch {
			case !ok:
				errs[i] = errNotCommitted
			case errors.Is(e, kerr.FencedInstanceID):
				fencedBy = e
				errs[i] = fmt.Errorf("%w: offset commit %s[%d]: %w", ErrFenced, o.TP.Topic, o.TP.Partition, e)
			case e != nil:
				errs[i] = fmt.Errorf("offset commit %s[%d]: %w", o.TP.Topic, o.TP.Partition, e)
			}
		}
	})
	if rerr != nil {
		rerr = fmt.Errorf("offset commit: %w", rerr)
	}
	if fencedBy != nil {
		r.fenced(fencedBy)
	}
	if f := r.cfg.onCommit; f != nil {
		hookErrs := errs
		if rerr != nil {
			hookErrs = make([]error, len(offs))
			for i := range hookErrs {
				hookErrs[i] = rerr
			}
		}
		f(member, generation, offs, hookErrs)
	}
	return errs, rerr
}

// fatal reports whether a fetch, group or start-read (ListOffsets) error
// cannot be repaired by retrying: Run stops with it.
func fatal(err error) bool {
	for _, e := range []error{
		kerr.SaslAuthenticationFailed, kerr.TopicAuthorizationFailed, kerr.GroupAuthorizationFailed,
		kerr.ClusterAuthorizationFailed, kerr.TransactionalIDAuthorizationFailed,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
