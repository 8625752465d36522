package kafkago

// This file holds the member's side of the classic group protocol: JoinGroup,
// SyncGroup, heartbeats and LeaveGroup, sent through kafka-go's Transport,
// with the consumer protocol's subscription and assignment encoded here.
//
// Why not kafka-go's ConsumerGroup: v0.4.51 writes its subscription as
// version 1 without the owned-partitions field version 1 carries, and
// rejects a member's subscription that has bytes after the user data. A
// librdkafka or Java member in the same group cannot read the first ("Protocol
// read buffer underflow"), and a kafka-go leader refuses theirs ("unable to
// read metadata for member"): the group never assigns. Neither is reachable
// through ConsumerGroupConfig or a GroupBalancer (the bytes are written and
// read inside ConsumerGroup). Here the subscription is written as version 0
// (topics and user data, nothing else: every client reads it, kafka-go's
// ConsumerGroup included, and an eager member has no owned partitions to
// report) and any version is read, ignoring what follows the user data.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/joingroup"
	"github.com/segmentio/kafka-go/protocol/syncgroup"
)

// generation is one generation of the group as this member sees it.
type generation struct {
	GroupID  string
	ID       int32
	MemberID string
	// Assignments are the partitions assigned to this member, by topic.
	Assignments map[string][]int32
}

// errRejoin is a join that must be retried at once (the group moved on
// while this member joined): not a failure.
var errRejoin = errors.New("kafkago: rejoin")

// join joins the group and syncs: it returns the generation this member is
// part of. memberID is the id to rejoin with ("" the first time); join
// updates it as the coordinator answers. Errors are the coordinator's
// (kafka.Error) or the connection's; errRejoin means "try again now".
func (g *groupRun) join(ctx context.Context, memberID *string) (*generation, error) {
	c := g.c
	balancers := c.cfg.balancers
	if len(balancers) == 0 {
		balancers = []kafka.GroupBalancer{kafka.RangeGroupBalancer{}, kafka.RoundRobinGroupBalancer{}}
	}
	req := &joingroup.Request{
		GroupID:            c.group,
		SessionTimeoutMS:   int32(c.opts.SessionTimeout / time.Millisecond),
		RebalanceTimeoutMS: int32(c.opts.RebalanceTimeout / time.Millisecond),
		MemberID:           *memberID,
		GroupInstanceID:    c.cfg.instanceID, // null when "" (dynamic)
		ProtocolType:       "consumer",
	}
	for _, b := range balancers {
		ud, err := b.UserData()
		if err != nil {
			return nil, fmt.Errorf("%w: group balancer %s: %w", ErrInvalidConfig, b.ProtocolName(), err)
		}
		req.Protocols = append(req.Protocols, joingroup.RequestProtocol{
			Name: b.ProtocolName(), Metadata: encodeSubscription(c.topics, ud),
		})
	}
	// The coordinator answers a JoinGroup once every member rejoined, up
	// to the rebalance timeout.
	rctx, cancel := context.WithTimeout(ctx, c.opts.RebalanceTimeout+c.opts.RequestTimeout)
	defer cancel()
	m, err := g.client.Transport.RoundTrip(rctx, g.client.Addr, req)
	if err != nil {
		return nil, err
	}
	resp := m.(*joingroup.Response)
	switch err := kafkaError(resp.ErrorCode); {
	case fencedBy(err):
		g.fenced(err)
		return nil, err
	case errors.Is(err, kafka.MemberIDRequired):
		*memberID = resp.MemberID // KIP-394: join again with it
		return nil, errRejoin
	case errors.Is(err, kafka.UnknownMemberId):
		if *memberID != "" { // evicted: join as a new member
			*memberID = ""
			return nil, errRejoin
		}
		return nil, err
	case err != nil:
		return nil, err
	}
	*memberID = resp.MemberID
	gen := &generation{GroupID: c.group, ID: resp.GenerationID, MemberID: resp.MemberID}

	sync := &syncgroup.Request{
		GroupID:         c.group,
		GenerationID:    resp.GenerationID,
		MemberID:        resp.MemberID,
		GroupInstanceID: c.cfg.instanceID,
		ProtocolType:    "consumer",
		ProtocolName:    resp.ProtocolName,
	}
	if resp.LeaderID == resp.MemberID {
		assigned, err := g.assign(ctx, balancers, resp)
		if err != nil {
			return nil, err
		}
		for _, mm := range resp.Members {
			sync.Assignments = append(sync.Assignments, syncgroup.RequestAssignment{
				MemberID: mm.MemberID, Assignment: encodeAssignment(assigned[mm.MemberID]),
			})
		}
	}
	sctx, cancel := context.WithTimeout(ctx, c.opts.RebalanceTimeout+c.opts.RequestTimeout)
	defer cancel()
	m, err = g.client.Transport.RoundTrip(sctx, g.client.Addr, sync)
	if err != nil {
		return nil, err
	}
	sresp := m.(*syncgroup.Response)
	switch err := kafkaError(sresp.ErrorCode); {
	case fencedBy(err):
		g.fenced(err)
		return nil, err
	case errors.Is(err, kafka.RebalanceInProgress), errors.Is(err, kafka.IllegalGeneration):
		return nil, errRejoin
	case errors.Is(err, kafka.UnknownMemberId):
		*memberID = ""
		return nil, errRejoin
	case err != nil:
		return nil, err
	}
	gen.Assignments, err = decodeAssignment(sresp.Assignments)
	if err != nil {
		// A leader wrote what no consumer protocol reads: rejoining gets
		// a new assignment (and the leader may have changed).
		c.opts.Logger.Warn("kafkago: unreadable assignment from the group leader, rejoining",
			"group", c.group, "error", err)
		return nil, errRejoin
	}
	return gen, nil
}

// assign runs on the leader: it computes every member's partitions with
// the balancer the coordinator chose, from fresh per-topic metadata, and
// records what it assigned from for the partition watcher.
func (g *groupRun) assign(ctx context.Context, balancers []kafka.GroupBalancer, resp *joingroup.Response) (map[string]map[string][]int, error) {
	i := slices.IndexFunc(balancers, func(b kafka.GroupBalancer) bool { return b.ProtocolName() == resp.ProtocolName })
	if i < 0 {
		// The coordinator chooses among the protocols every member
		// offered, this one's included.
		return nil, fmt.Errorf("kafkago: the coordinator chose assignor %q, which this member did not offer", resp.ProtocolName)
	}
	members := make([]kafka.GroupMember, 0, len(resp.Members))
	var topics []string
	for _, mm := range resp.Members {
		topicsOf, ud, err := decodeSubscription(mm.Metadata)
		if err != nil {
			return nil, fmt.Errorf("kafkago: subscription of member %s: %w", mm.MemberID, err)
		}
		members = append(members, kafka.GroupMember{ID: mm.MemberID, Topics: topicsOf, UserData: ud})
		topics = append(topics, topicsOf...)
	}
	slices.Sort(topics)
	topics = slices.Compact(topics)
	ps, counts, err := g.readPartitions(ctx, topics)
	if err != nil {
		return nil, fmt.Errorf("kafkago: reading partitions to assign: %w", err)
	}
	g.assignedFrom.Store(&counts)
	return balancers[i].AssignGroups(members, ps), nil
}

// kafkaError is code as a kafka.Error, nil for 0.
func kafkaError(code int16) error {
	if code == 0 {
		return nil
	}
	return kafka.Error(code)
}

// encodeSubscription writes a ConsumerProtocolSubscription, version 0:
// version, topics, user data.
func encodeSubscription(topics []string, userData []byte) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 0)
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = binary.BigEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
	}
	return appendBytes(b, userData)
}

// encodeAssignment writes a ConsumerProtocolAssignment, version 0: version,
// partitions by topic (sorted), no user data.
func encodeAssignment(byTopic map[string][]int) []byte {
	var b []byte
	b = binary.BigEndian.AppendUint16(b, 0)
	topics := make([]string, 0, len(byTopic))
	for t := range byTopic {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	b = binary.BigEndian.AppendUint32(b, uint32(len(topics)))
	for _, t := range topics {
		b = binary.BigEndian.AppendUint16(b, uint16(len(t)))
		b = append(b, t...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(byTopic[t])))
		for _, p := range byTopic[t] {
			b = binary.BigEndian.AppendUint32(b, uint32(int32(p)))
		}
	}
	return appendBytes(b, nil)
}

// appendBytes appends nullable bytes: an int32 length (-1 for nil), then
// the bytes.
func appendBytes(b, v []byte) []byte {
	if v == nil {
		return binary.BigEndian.AppendUint32(b, ^uint32(0))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
	return append(b, v...)
}

// errShort is a subscription or assignment that ends before its fields do.
var errShort = errors.New("truncated")

// decodeSubscription reads the topics and user data of a
// ConsumerProtocolSubscription of any version: the fields every version
// starts with. What later versions add after them (owned partitions,
// generation, rack) is not needed by an eager assignor and is ignored.
func decodeSubscription(b []byte) (topics []string, userData []byte, err error) {
	r := reader{b: b}
	r.int16() // version
	n := r.int32()
	for i := int32(0); i < n && r.err == nil; i++ {
		topics = append(topics, r.string())
	}
	userData = r.bytes()
	return topics, userData, r.err
}

// decodeAssignment reads the partitions of a ConsumerProtocolAssignment of
// any version (empty input: nothing assigned).
func decodeAssignment(b []byte) (map[string][]int32, error) {
	out := map[string][]int32{}
	if len(b) == 0 {
		return out, nil
	}
	r := reader{b: b}
	r.int16() // version
	n := r.int32()
	for i := int32(0); i < n && r.err == nil; i++ {
		t := r.string()
		np := r.int32()
		for j := int32(0); j < np && r.err == nil; j++ {
			out[t] = append(out[t], r.int32())
		}
	}
	return out, r.err
}

// reader reads big-endian Kafka protocol fields; the first error sticks
// and later reads return zero values.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("%w: %d bytes wanted, %d left", errShort, n, len(r.b))
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) int16() int16 {
	if v := r.take(2); v != nil {
		return int16(binary.BigEndian.Uint16(v))
	}
	return 0
}

func (r *reader) int32() int32 {
	if v := r.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *reader) string() string { return string(r.take(int(r.int16()))) }

// bytes reads nullable bytes (nil for length -1).
func (r *reader) bytes() []byte {
	n := r.int32()
	if n == -1 || r.err != nil {
		return nil
	}
	return bytes.Clone(r.take(int(n)))
}
