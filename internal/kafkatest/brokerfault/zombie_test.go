package brokerfault_test

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The embedded broker's bug that Run steers around (no code of this module
// involved): RemoveNode closes the broker's listener but keeps serving the
// connections already open to it, as a broker that leads nothing. A client
// that keeps such a connection across an AddNode of the same node id and
// port (librdkafka does: its broker handle is keyed by id and address) is
// answered NOT_LEADER_OR_FOLLOWER for ever, even for a partition the new
// broker leads. Real Kafka closes a stopped broker's connections. Run brings
// a removed broker back on its port under a new node id, which the clients
// connect to afresh.
func TestKfakeRemovedBrokerKeepsServingItsConnections(t *testing.T) {
	fake, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, "t"))
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(fake.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	leader := fake.LeaderFor("t", 0)
	_, ps, _ := net.SplitHostPort(fake.ListenAddrs()[leader])
	port, _ := strconv.Atoi(ps)
	list := func() int16 {
		t.Helper()
		req := kmsg.NewPtrListOffsetsRequest()
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = "t"
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Timestamp, rp.CurrentLeaderEpoch = -1, -1
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		// The broker object of the leader's id: its connection is reused.
		resp, err := req.RequestWith(ctx, cl.Broker(int(leader)))
		if err != nil {
			t.Fatal(err)
		}
		return resp.Topics[0].Partitions[0].ErrorCode
	}
	if code := list(); code != 0 {
		t.Fatalf("before: error code %d", code)
	}
	if err := fake.RemoveNode(leader); err != nil {
		t.Fatal(err)
	}
	if _, _, err := fake.AddNode(leader, port); err != nil {
		t.Fatal(err)
	}
	if err := fake.MoveTopicPartition("t", 0, leader); err != nil {
		t.Fatal(err)
	}
	if code := list(); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("after the same node came back and was made leader: error code %d; want NOT_LEADER_OR_FOLLOWER from the removed broker (if 0, kfake closes a removed broker's connections now: bring the broker back under its own id again)", code)
	}
}
