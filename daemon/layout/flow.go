package layout

// flowGraph is a small residual graph for min-cost max-flow by successive
// shortest paths (SPFA), deterministic by edge insertion order.
type flowGraph struct {
	adj   [][]int // vertex -> edge indices (forward and reverse)
	edges []flowEdge
}

type flowEdge struct {
	to, rev int
	cap     int
	flow    int
	cost    int
}

func (g *flowGraph) addVertex() int {
	g.adj = append(g.adj, nil)
	return len(g.adj) - 1
}

// addEdge adds u->v with capacity c and cost per unit, returns the forward edge index.
func (g *flowGraph) addEdge(u, v, c, cost int) int {
	e := len(g.edges)
	g.edges = append(g.edges, flowEdge{to: v, rev: e + 1, cap: c, cost: cost}, flowEdge{to: u, rev: e, cap: 0, cost: -cost})
	g.adj[u] = append(g.adj[u], e)
	g.adj[v] = append(g.adj[v], e+1)
	return e
}

func (g *flowGraph) residual(e int) int {
	return g.edges[e].cap - g.edges[e].flow
}

// maxFlow pushes as much additional flow from s to t as capacities allow, each
// time along a cheapest path, and returns the amount pushed. With no negative
// cycle in the residual graph at the start (true for a fresh graph and kept by
// successive shortest paths), the result has minimum cost for its flow value.
func (g *flowGraph) maxFlow(s, t int) int {
	total := 0
	n := len(g.adj)
	parent := make([]int, n)
	dist := make([]int, n)
	inQueue := make([]bool, n)
	queue := make([]int, 0, n)
	const inf = int(^uint(0) >> 2)
	for {
		for i := range n {
			parent[i], dist[i] = -1, inf
		}
		dist[s] = 0
		queue = append(queue[:0], s)
		inQueue[s] = true
		for h := 0; h < len(queue); h++ {
			u := queue[h]
			inQueue[u] = false
			for _, e := range g.adj[u] {
				if g.residual(e) <= 0 {
					continue
				}
				v := g.edges[e].to
				if d := dist[u] + g.edges[e].cost; d < dist[v] {
					dist[v], parent[v] = d, e
					if !inQueue[v] {
						inQueue[v] = true
						queue = append(queue, v)
					}
				}
			}
			if len(queue) > 4*n && h > len(queue)/2 {
				// Compact the queue to keep memory bounded on long runs.
				queue = append(queue[:0], queue[h+1:]...)
				h = -1
			}
		}
		if parent[t] == -1 {
			return total
		}
		push := inf
		for v := t; v != s; {
			e := parent[v]
			push = min(push, g.residual(e))
			v = g.edges[g.edges[e].rev].to
		}
		for v := t; v != s; {
			e := parent[v]
			g.edges[e].flow += push
			g.edges[g.edges[e].rev].flow -= push
			v = g.edges[g.edges[e].rev].to
		}
		total += push
	}
}
