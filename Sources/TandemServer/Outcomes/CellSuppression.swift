/// Which cells of one figure may be published, for the whole center and for each part of a
/// partition of it (the cohorts), so that no published cell, and no difference between
/// published cells, describes 1 to `minimum − 1` patients (PROTOCOL.md §9.19).
///
/// A cell's `counts` are the numbers of patients it rests on: its population first, then,
/// for a share, those who did and those who did not. A count of 0 describes nobody.
///
/// - A cell is published only when every count is 0 or at least `minimum`, and its
///   population at least `minimum` (primary suppression).
/// - The center less its published parts is itself a figure anyone can work out. While
///   any of its counts is from 1 to `minimum − 1`, the published part with the smallest
///   population is suppressed too (complementary suppression), and the check repeats.
///
/// Then the center less any one published part is the other published parts plus that
/// remainder, each 0 or at least `minimum` in every count; two parts are disjoint. The
/// decision depends on the figure alone, never on what a query asks, so two queries (two
/// ranges, a cohort and the center) always see the same decision for the same figure.
///
/// ```swift
/// let decision = CellSuppression.decide(center: [30, 12, 18], parts: ["2026-01": [22, 9, 13], "2026-02": [8, 3, 5]], minimum: 11)
/// // decision.center == true; decision.parts == [] (February is too small, and then January alone would reveal it)
/// ```
enum CellSuppression {
    struct Decision: Equatable {
        var center: Bool
        var parts: Set<String>
    }

    static func decide(center: [Int], parts: [String: [Int]], minimum: Int) -> Decision {
        func safe(_ counts: [Int]) -> Bool { counts.allSatisfy { $0 == 0 || $0 >= minimum } }
        func publishable(_ counts: [Int]) -> Bool { (counts.first ?? 0) >= minimum && safe(counts) }
        guard publishable(center) else { return Decision(center: false, parts: []) }
        var published = Set(parts.filter { publishable($0.value) }.keys)
        var remainder = center
        for key in published { remainder = zip(remainder, parts[key] ?? []).map { $0 - $1 } }
        // Smallest population first; ties by key, so the decision is the same every time.
        let order = published.sorted { a, b in
            let (na, nb) = (parts[a]?.first ?? 0, parts[b]?.first ?? 0)
            return na != nb ? na < nb : a < b
        }
        var next = order.makeIterator()
        while !safe(remainder), let smallest = next.next() {
            published.remove(smallest)
            remainder = zip(remainder, parts[smallest] ?? []).map { $0 + $1 }
        }
        return Decision(center: true, parts: published)
    }
}
