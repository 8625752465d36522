package franz

// This file holds the Consumer's options: the ones every adapter shares
// (defined in the engine; options_shared.go, which genoptions writes,
// exports them with their docs), kgo's own (WithClientOptions), and the
// check that the kgo options given keep the guarantees.

//go:generate go run ../../internal/cmd/genoptions -adapter franz

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// Option configures a Consumer. The options of options_shared.go are shared
// by every adapter of this module (same names, meanings, defaults and
// validation);
// each documents its default and the Java setting it corresponds to, which
// for kgo is the option of the same name unless said otherwise.
type Option = engine.Option

// config is kgo's own settings (engine.Options.Adapter).
type config struct {
	extra      []kgo.Opt // WithClientOptions, in order
	instanceID string    // WithInstanceID; "" for a dynamic member
	protocol   GroupProtocol
	txnID      *string // WithTransactionalID (txn.go)

	// Tests only (export_test.go).
	onAssign func(member string, generation int32, tps []TopicPartition)
	onRevoke func(tps []TopicPartition, lost bool)
	// onRevokeStart is called as a revoke or loss starts, before its
	// drain and commit.
	onRevokeStart func(tps []TopicPartition, lost bool)
	onCommit      func(member string, generation int32, offs []engine.Offset, errs []error)
	// onCommitMade is called as a commit is made, with the member id it
	// is decided for, before kgo is asked to send it.
	onCommitMade func(member string)
	onPause      func(tp TopicPartition, paused bool)
}

// own returns the kgo settings of o, or records that option is not one of
// this package's.
func own(o *engine.Options, option string) *config { return engine.Own[config](o, "franz", option) }

// WithClientOptions passes kgo options through: TLS (DialTLSConfig), SASL,
// Dialer, Balancers (kgo's default is the cooperative-sticky balancer;
// kgo.RangeBalancer is eager), Rack, fetch sizes, metrics
// hooks, and anything else that leaves the guarantees alone. Default: none
// (kgo's defaults, but for what the shared options set). Given several
// times, the lists are concatenated.
//
// NewConsumer applies them to throwaway clients (kgo.NewClient, never
// connected, closed at once; a kgo.HookNewClient sees them) and reads the
// effective values back with kgo's OptValue. It refuses, naming the kgo
// option: those the Consumer owns (ConsumerGroup, ConsumeTopics,
// ConsumeRegex, ConsumePartitions, ConsumeExcludeTopics, SeedBrokers: use
// the arguments of NewConsumer; DisableAutoCommit: it is set already),
// those that would commit or move offsets
// behind the handlers' back (AutoCommitMarks, GreedyAutoCommit,
// AutoCommitInterval, AutoCommitCallback, ConsumeStartOffset,
// ConsumeResetOffset, AdjustFetchOffsetsFn, OnOffsetsFetched,
// OnPartitionsAssigned, OnPartitionsRevoked, OnPartitionsLost,
// OnPartitionsCallbackBlocked, TransactionalID, ShareGroup,
// ServerSideBalancer), InstanceID (use WithInstanceID), and those a shared option sets (SessionTimeout,
// RebalanceTimeout, HeartbeatInterval, FetchIsolationLevel,
// FetchMaxPartitionBytes, FetchMaxWait, RetryBackoffFn, ClientID: use the
// shared option) when they differ from it. The Consumer's own settings
// (DisableAutoCommit, BlockRebalanceOnPoll, KeepControlRecords, its
// rebalance callbacks) are applied after these, and no kgo option undoes
// them (BlockRebalanceOnPoll and KeepControlRecords may be repeated).
func WithClientOptions(opts ...kgo.Opt) Option {
	return func(o *engine.Options) {
		c := own(o, "WithClientOptions")
		for i, opt := range opts {
			if opt == nil {
				o.Fail(fmt.Errorf("%w: WithClientOptions: option %d is nil", ErrInvalidConfig, i))
				return
			}
		}
		c.extra = append(c.extra, opts...)
	}
}

// WithTransactionalID makes the Consumer exactly-once (consume → transform
// → produce): the records a handler gives Produce are written, with the
// offsets and commit metadata that mark its record done, in one
// transaction per commit (the commit interval defaults to 100ms in this
// mode; WithCommitInterval changes it). id is the transactional id of the
// Consumer's producer (kgo.TransactionalID, Java transactional.id): unique
// per consumer process and stable across its restarts (a pod name), so that
// a restart fences the previous process and aborts its open transaction.
// Default: none (at-least-once). A dead-lettered record's dead-letter
// record (WithDeadLetter) goes in the transaction that commits the record
// as done; a WithDeadLetterFunc function may call Produce with its context
// likewise. Refused when empty; not available with RunBatch yet. See
// Produce.
func WithTransactionalID(id string) Option {
	return func(o *engine.Options) { own(o, "WithTransactionalID").txnID = &id }
}

// WithInstanceID makes the member static (KIP-345) under id: a member that
// restarts with the same id within the session timeout gets its partitions
// back without a rebalance (on Kafka; the embedded test broker rebalances
// when the rejoin's metadata differs, see the README). Run's end (its
// context, Close, a failure) drains and commits every partition within
// RevokeTimeout and does not leave the group: the partitions wait, unfetched,
// for the member's return or its session timeout (WithSessionTimeout), after
// which the group rebalances them. Ids must be unique in the group: a second
// member joining with this id fences this one, whose Run then ends with an
// error wrapping ErrFenced and naming id, without a commit and without
// rejoining. Default: none (a dynamic member, which leaves the group at the
// end of Run). An empty id is refused by NewConsumer. Corresponds to the
// Java group.instance.id (kgo.InstanceID, which WithClientOptions refuses).
func WithInstanceID(id string) Option {
	return func(o *engine.Options) {
		c := own(o, "WithInstanceID")
		if id == "" {
			o.Fail(fmt.Errorf("%w: InstanceID is empty (leave WithInstanceID out for a dynamic member)", ErrInvalidConfig))
			return
		}
		c.instanceID = id
	}
}

// GroupProtocol is the consumer group protocol a member speaks
// (WithGroupProtocol).
type GroupProtocol int

const (
	// ClassicProtocol is the classic protocol (JoinGroup, SyncGroup,
	// Heartbeat): the group leader assigns with the kgo balancers, and a
	// rebalance stops the group (eager) or the partitions that move
	// (cooperative-sticky, kgo's default).
	ClassicProtocol GroupProtocol = iota
	// ConsumerProtocol is KIP-848's consumer protocol
	// (ConsumerGroupHeartbeat, Kafka 4.0+): the coordinator assigns (its
	// range assignor) and each member revokes and receives only the
	// partitions that move.
	ConsumerProtocol
)

// WithGroupProtocol sets the consumer group protocol: ClassicProtocol
// (default) or ConsumerProtocol (kgo.ServerSideBalancer with
// kgo.RangeBalancer, so the coordinator's range assignor). Under
// ConsumerProtocol the coordinator owns the session and the assignment, so
// NewConsumer refuses, naming them, WithSessionTimeout,
// WithHeartbeatInterval and kgo's Balancers in WithClientOptions. kgo falls
// back to the classic protocol by itself against a broker without KIP-848
// (before Kafka 4.0). Commits refused with STALE_MEMBER_EPOCH are retried by
// kgo (its documentation recommends Kafka 4.3+, where that no longer happens
// in normal operation). Corresponds to the Java group.protocol.
func WithGroupProtocol(p GroupProtocol) Option {
	return func(o *engine.Options) {
		c := own(o, "WithGroupProtocol")
		if p != ClassicProtocol && p != ConsumerProtocol {
			o.Fail(fmt.Errorf("%w: GroupProtocol %d is neither ClassicProtocol nor ConsumerProtocol", ErrInvalidConfig, p))
			return
		}
		c.protocol = p
	}
}

// checkGroupProtocol refuses, naming it, what cfg's protocol forbids.
func checkGroupProtocol(o *engine.Options, cfg *config) error {
	if cfg.protocol != ConsumerProtocol {
		return nil
	}
	for _, name := range []string{"SessionTimeout", "HeartbeatInterval"} {
		if o.IsSet(name) {
			return fmt.Errorf("%w: option %s may not be set with ConsumerProtocol: the group coordinator owns it", ErrInvalidConfig, name)
		}
	}
	if len(cfg.extra) == 0 {
		return nil
	}
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	cl, err := kgo.NewClient(append(slices.Clone(cfg.extra), kgo.ConsumerGroup("probe"), kgo.WithContext(dead))...)
	if err != nil {
		return fmt.Errorf("%w: WithClientOptions: kgo: %w", ErrInvalidConfig, err)
	}
	defer cl.Close()
	def, err := kgo.NewClient(kgo.ConsumerGroup("probe"), kgo.WithContext(dead))
	if err != nil {
		return fmt.Errorf("%w: kgo defaults: %w", ErrInvalidConfig, err)
	}
	defer def.Close()
	if !reflect.DeepEqual(fmt.Sprint(cl.OptValue("Balancers")), fmt.Sprint(def.OptValue("Balancers"))) {
		return fmt.Errorf("%w: WithClientOptions: kgo option Balancers may not be set with ConsumerProtocol: the group coordinator assigns", ErrInvalidConfig)
	}
	return nil
}

func newOptions(brokers []string, group string, topics []string, opts []Option) (*engine.Options, *config, error) {
	cfg := &config{}
	o, err := engine.NewOptions(cfg, opts)
	if err != nil {
		return nil, nil, err
	}
	o.ConsumerProtocol = cfg.protocol == ConsumerProtocol
	if err := engine.ValidateTarget(brokers, group, topics, false); err != nil {
		return nil, nil, err
	}
	if err := checkGroupProtocol(o, cfg); err != nil {
		return nil, nil, err
	}
	if err := o.Validate(); err != nil {
		return nil, nil, err
	}
	if err := o.ValidateDeadLetter(topics); err != nil {
		return nil, nil, err
	}
	if err := checkClientOptions(o, brokers, group, cfg.extra); err != nil {
		return nil, nil, err
	}
	if err := o.Transactional(cfg.txnID); err != nil {
		return nil, nil, err
	}
	return o, cfg, nil
}

// sharedOpts are the kgo options the shared options map onto.
func sharedOpts(o *engine.Options, brokers []string) []kgo.Opt {
	iso := kgo.ReadUncommitted()
	if o.ReadCommitted {
		iso = kgo.ReadCommitted()
	}
	return []kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(o.ClientID),
		kgo.SessionTimeout(o.SessionTimeout),
		kgo.RebalanceTimeout(o.RebalanceTimeout),
		kgo.HeartbeatInterval(o.HeartbeatInterval),
		kgo.FetchIsolationLevel(iso),
		// A fetch response is decoded whole before the poll hands out
		// any of it: a response of at most FetchMaxBytes (kgo's default
		// is 50 MiB) keeps the handlers busy while the next one is
		// fetched and decoded. WithClientOptions(kgo.FetchMaxBytes(n))
		// raises it (fewer round trips on a slow link).
		kgo.FetchMaxBytes(int32(o.FetchMaxBytes)),
		kgo.FetchMaxPartitionBytes(int32(o.FetchMaxBytes)),
		kgo.FetchMaxWait(o.FetchMaxWait),
		kgo.RetryBackoffFn(retryBackoff(o.RetryBackoff)),
		kgo.WithLogger(kgoLogger{o.Logger}),
	}
}

// retryBackoff is the shared request backoff as kgo's RetryBackoffFn.
func retryBackoff(first time.Duration) func(int) time.Duration {
	return func(tries int) time.Duration { return engine.RetryBackoffAt(first, tries) }
}

// refused are the kgo options WithClientOptions may not set (to anything
// but kgo's default), with why; read back from a client in the group.
var refused = []struct{ name, why string }{
	{"ConsumerGroup", "use the group argument of NewConsumer"},
	{"ShareGroup", "a share group does not commit offsets"},
	{"TransactionalID", "the Consumer is not a transactional consumer"},
	{"ConsumeTopics", "use the topics argument of NewConsumer"},
	{"ConsumeRegex", "use the topics argument of NewConsumer"},
	{"ConsumePartitions", "use the topics argument of NewConsumer"},
	{"ConsumeExcludeTopics", "use the topics argument of NewConsumer"},
	{"DisableAutoCommit", "the Consumer sets it itself: leave it out"},
	{"AutoCommitMarks", "commits follow the handlers (see WithCommitInterval), never kgo's auto-commit"},
	{"GreedyAutoCommit", "commits follow the handlers (see WithCommitInterval), never kgo's auto-commit"},
	{"AutoCommitInterval", "commits follow the handlers: use WithCommitInterval"},
	{"ConsumeResetOffset", "the Consumer picks every start offset: use WithStartOffset"},
	{"ConsumeStartOffset", "the Consumer picks every start offset: use WithStartOffset"},
	{"AdjustFetchOffsetsFn", "the Consumer sets the start offsets from the commits and their metadata"},
	{"OnOffsetsFetched", "the Consumer reads the commits and their metadata itself"},
	{"OnPartitionsCallbackBlocked", "the Consumer's poll loop never holds a rebalance"},
	{"ServerSideBalancer", "use WithGroupProtocol(ConsumerProtocol)"},
	{"InstanceID", "use WithInstanceID (the Consumer handles its fencing)"},
}

// callbacks are the partition callbacks kgo wraps in a client in a group
// (so that they cannot be read back there): each is detected by kgo
// refusing it in a client without a group.
var callbacks = []struct {
	name  string
	clear kgo.Opt
	why   string
}{
	{"OnPartitionsAssigned", kgo.OnPartitionsAssigned(nil), "the Consumer handles assignments"},
	{"OnPartitionsRevoked", kgo.OnPartitionsRevoked(nil), "the Consumer drains and commits revoked partitions itself"},
	{"OnPartitionsLost", kgo.OnPartitionsLost(nil), "the Consumer drops lost partitions itself"},
}

// checkClientOptions refuses, naming it, a kgo option in extra that
// breaks the guarantees, is the Consumer's, or contradicts a shared option.
//
// It reads the options back from throwaway clients that never connect:
// their context is cancelled before they are created (any request they
// could start fails at once; none of them consumes topics), and they are
// closed before it returns.
func checkClientOptions(o *engine.Options, brokers []string, group string, extra []kgo.Opt) error {
	if len(extra) == 0 {
		return nil
	}
	dead, cancel := context.WithCancel(context.Background())
	cancel()
	probe := func(opts ...[]kgo.Opt) (*kgo.Client, error) {
		return kgo.NewClient(slices.Concat(slices.Concat(opts...), []kgo.Opt{kgo.WithContext(dead)})...)
	}
	inGroup := []kgo.Opt{kgo.ConsumerGroup(group)}
	ours := sharedOpts(o, brokers)
	cl, err := probe(inGroup, ours, extra)
	if err != nil {
		return fmt.Errorf("%w: WithClientOptions: kgo: %w", ErrInvalidConfig, err)
	}
	defer cl.Close()
	def, err := probe(inGroup)
	if err != nil {
		return fmt.Errorf("%w: kgo defaults: %w", ErrInvalidConfig, err)
	}
	defer def.Close()
	for _, r := range refused {
		if !reflect.DeepEqual(cl.OptValues(r.name), def.OptValues(r.name)) {
			return fmt.Errorf("%w: WithClientOptions: kgo option %s may not be set: %s", ErrInvalidConfig, r.name, r.why)
		}
	}
	if funcPointer(cl.OptValue("AutoCommitCallback")) != funcPointer(def.OptValue("AutoCommitCallback")) {
		return fmt.Errorf("%w: WithClientOptions: kgo option AutoCommitCallback may not be set: "+
			"commits follow the handlers, never kgo's auto-commit", ErrInvalidConfig)
	}
	for i, cb := range callbacks {
		others := make([]kgo.Opt, 0, len(callbacks)-1)
		for j, o := range callbacks {
			if j != i {
				others = append(others, o.clear)
			}
		}
		// Without a group, kgo refuses a partition callback: the others
		// cleared, a refusal names this one.
		if cl, err := probe(extra, others); err != nil {
			if strings.Contains(err.Error(), "assigned/revoked/lost") {
				return fmt.Errorf("%w: WithClientOptions: kgo option %s may not be set: %s", ErrInvalidConfig, cb.name, cb.why)
			}
		} else {
			cl.Close()
		}
	}
	// The settings of the shared options: a kgo option may repeat them
	// but not change them.
	mine, err := probe(inGroup, ours)
	if err != nil {
		return fmt.Errorf("%w: kgo: %w", ErrInvalidConfig, err)
	}
	defer mine.Close()
	if got, set := cl.OptValue("FetchMaxBytes"), mine.OptValue("FetchMaxBytes"); got.(int32) < set.(int32) {
		// kgo would also cut the partition size to it.
		return fmt.Errorf("%w: WithClientOptions: kgo option FetchMaxBytes (%v) is below WithFetchMaxBytes (%v): it may only raise a response's size; use WithFetchMaxBytes for smaller fetches",
			ErrInvalidConfig, got, set)
	}
	for _, s := range []struct{ kgo, option string }{
		{"SeedBrokers", "the brokers argument of NewConsumer"},
		{"ClientID", "WithClientID"},
		{"SessionTimeout", "WithSessionTimeout"},
		{"RebalanceTimeout", "WithRebalanceTimeout"},
		{"HeartbeatInterval", "WithHeartbeatInterval"},
		{"FetchIsolationLevel", "WithReadCommitted"},
		{"FetchMaxPartitionBytes", "WithFetchMaxBytes"},
		{"FetchMaxWait", "WithFetchMaxWait"},
	} {
		if !reflect.DeepEqual(cl.OptValues(s.kgo), mine.OptValues(s.kgo)) {
			return fmt.Errorf("%w: WithClientOptions: kgo option %s differs from what %s sets (%v, not %v): use %s",
				ErrInvalidConfig, s.kgo, s.option, cl.OptValue(s.kgo), mine.OptValue(s.kgo), s.option)
		}
	}
	if funcPointer(cl.OptValue("RetryBackoffFn")) != funcPointer(mine.OptValue("RetryBackoffFn")) {
		return fmt.Errorf("%w: WithClientOptions: kgo option RetryBackoffFn may not be set: use WithRetryBackoff", ErrInvalidConfig)
	}
	return nil
}

// funcPointer returns the code pointer of the function f (0 for nil): the
// same for every value of one function literal or method value.
func funcPointer(f any) uintptr {
	v := reflect.ValueOf(f)
	if v.Kind() != reflect.Func || v.IsNil() {
		return 0
	}
	return v.Pointer()
}
