"""Which tasks are upstream of which, in memory linear in the workflow's size.

Every caller asks the same question, "is task X upstream of task T?" (a template's
`outputs.X`, a faithfulness source, a function agent's parameter), and the runtime also
lists a task's upstream tasks when an agent enumerates `ctx.outputs`. Keeping every task's
full set of ancestors answers both, but costs the square of a chain's length (a chain of
10,000 tasks holds 50 million entries).

A `Lineage` keeps three numbers per task from one depth-first walk over `needs` (GRAIL-style
interval labels; every task finishes after the tasks it needs, so after all its ancestors):

- `post`: the task's place in the walk's post-order;
- `start`: the first post number given out while the walk was inside the task, so the tasks
  the walk reached through it (certainly its ancestors) are exactly those with `post` in
  `[start, post)`;
- `low`: the smallest `post` among all its ancestors, so none lies outside `[low, post)`.

A question is answered by these two intervals alone in the common shapes (chains, trees,
fan-outs, fan-ins); otherwise by a walk over `needs` that only enters tasks whose interval
can hold X, its answer kept in a small cache. A workflow with a cycle (invalid, but checked
before it is refused) is answered by plain walks, which tolerate cycles.

    lineage = Lineage({"a": (), "b": ("a",), "c": ("b",)})
    "a" in lineage["c"]        # True: c needs b, which needs a
    sorted(lineage["c"])       # ['a', 'b']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Set

_CACHE = 4096
"""Answers of walks kept per lineage; the cache is emptied when full."""


class Lineage(Mapping[str, "Upstream"]):
    """The upstream tasks of every task, by task id: `lineage[t]` is a set-like view."""

    __slots__ = ("_cache", "_cyclic", "_ids", "_index", "_low", "_needs", "_post", "_start")

    def __init__(self, needs: Mapping[str, Iterable[str]]) -> None:
        """`needs`: each task's id and the ids of the tasks it needs; ids that name no
        task are left out, as a workflow with them is refused anyway."""
        self._ids = list(needs)
        self._index = {task_id: i for i, task_id in enumerate(self._ids)}
        index = self._index
        self._needs: list[tuple[int, ...]] = [
            tuple(dict.fromkeys(index[n] for n in needs[t] if n in index)) for t in self._ids]
        self._cache: dict[tuple[int, int], bool] = {}
        self._post, self._start, self._low, self._cyclic = _label(self._needs)

    # -- the mapping ---------------------------------------------------------------------

    def __getitem__(self, task_id: str) -> Upstream:
        return Upstream(self, self._index[task_id])

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids)

    def __len__(self) -> int:
        return len(self._ids)

    # -- questions -----------------------------------------------------------------------

    @property
    def cyclic(self) -> bool:
        """Whether some tasks need each other in a cycle (the workflow is then invalid)."""
        return self._cyclic

    def is_upstream(self, ancestor: str, task_id: str) -> bool:
        """Whether `task_id` needs `ancestor`, directly or not."""
        x, t = self._index.get(ancestor), self._index.get(task_id)
        return x is not None and t is not None and self._reaches(t, x)

    def _reaches(self, t: int, x: int) -> bool:
        if self._cyclic:
            return x in self._walk(t)
        post, start, low = self._post, self._start, self._low
        px = post[x]
        if not low[t] <= px < post[t]:
            return False
        if start[t] <= px:
            return True
        known = self._cache.get((t, x))
        if known is None:
            known = self._search(t, x)
            if len(self._cache) >= _CACHE:
                self._cache.clear()
            self._cache[t, x] = known
        return known

    def _search(self, t: int, x: int) -> bool:
        """A walk up from `t` that enters only tasks whose interval may hold `x`."""
        post, start, low, needs = self._post, self._start, self._low, self._needs
        px = post[x]
        seen = {t}
        stack = [t]
        while stack:
            for n in needs[stack.pop()]:
                if n == x:
                    return True
                if n in seen or not low[n] <= px < post[n]:
                    continue
                if start[n] <= px:
                    return True
                seen.add(n)
                stack.append(n)
        return False

    def _walk(self, t: int) -> set[int]:
        """Every task `t` needs, directly or not (itself too when it is on a cycle)."""
        needs = self._needs
        seen: set[int] = set()
        stack = list(needs[t])
        while stack:
            current = stack.pop()
            if current not in seen:
                seen.add(current)
                stack.extend(needs[current])
        return seen

    def _upstream_ids(self, t: int) -> list[str]:
        ids, post = self._ids, self._post
        return [ids[i] for i in sorted(self._walk(t), key=post.__getitem__)]


class Upstream(Set[str]):
    """The tasks one task needs, directly or not, asked about without being stored:
    membership is a `Lineage` question, iteration (upstream-most first) a walk."""

    __slots__ = ("_len", "_lineage", "_task")

    def __init__(self, lineage: Lineage, task: int) -> None:
        self._lineage, self._task = lineage, task
        self._len: int | None = None

    def __contains__(self, task_id: object) -> bool:
        x = self._lineage._index.get(task_id) if isinstance(task_id, str) else None
        return x is not None and self._lineage._reaches(self._task, x)

    def __iter__(self) -> Iterator[str]:
        return iter(self._lineage._upstream_ids(self._task))

    def __len__(self) -> int:
        if self._len is None:
            self._len = len(self._lineage._walk(self._task))
        return self._len

    def __repr__(self) -> str:
        return f"Upstream({sorted(self)!r})"


def _label(needs: list[tuple[int, ...]]) -> tuple[list[int], list[int], list[int], bool]:
    """Post-order, subtree start and lowest ancestor of each task, from an iterative
    depth-first walk over `needs`; and whether the walk met a cycle."""
    count = len(needs)
    post, start, low = [0] * count, [0] * count, [0] * count
    state = bytearray(count)  # 0 unseen, 1 on the walk's path, 2 finished
    cyclic = False
    clock = 0
    needed = bytearray(count)
    for task_needs in needs:
        for n in task_needs:
            needed[n] = 1
    # From the tasks nothing needs, the last declared first (tasks are mostly declared
    # upstream-first): the walk then follows a chain to its start, and the labels of a
    # task's first need cover that need's ancestors.
    roots = [t for t in reversed(range(count)) if not needed[t]]
    for root in roots + [t for t in reversed(range(count)) if needed[t]]:
        if state[root]:
            continue
        state[root] = 1
        start[root] = clock
        path: list[tuple[int, Iterator[int]]] = [(root, iter(needs[root]))]
        while path:
            node, pending = path[-1]
            for n in pending:
                if state[n] == 0:
                    state[n] = 1
                    start[n] = clock
                    path.append((n, iter(needs[n])))
                    break
                if state[n] == 1:
                    cyclic = True
            else:
                path.pop()
                state[node] = 2
                post[node] = clock
                clock += 1
                low[node] = min([start[node], *(low[n] for n in needs[node])])
    return post, start, low, cyclic
