/// Which cells of one figure may be published, for the whole center and for each part of a
/// partition of it (the cohorts), so that no published cell, and no difference between
/// published cells, describes 1 to `minimum − 1` patients (PROTOCOL.md §9.19).
///
/// Each cell has a base (the patients it is about: those enrolled by the week's end, or
/// in the cohorts that count that week since enrollment) and counts (the patients it rests
/// on: its population first, then, for a share, those who are and are not hits). A count
/// of 0 describes nobody.
///
/// - First by base alone, which no patient's behaviour changes: a part whose base has
///   fewer than `minimum` patients is never published, nor the center when its base has
///   (and not none). While the parts left out add up to 1 to `minimum − 1` patients, the
///   published part with the smallest base is left out too. So whether a cohort is shown
///   never tells what someone in a small cohort did.
/// - Then by counts: a cell is published only when every count is 0 or at least
///   `minimum`, and its population 0 or at least `minimum` (primary suppression). While
///   the center less its published parts has a count from 1 to `minimum − 1`, the published
///   part with the smallest base is suppressed too (complementary suppression).
///
/// Then the center less any one published part is the other published parts plus that
/// remainder, each 0 or at least `minimum` in every count; two parts are disjoint. The
/// decision depends on the figure alone, never on what a query asks, so two queries (two
/// ranges, a cohort and the center) always see the same decision for the same figure.
///
/// ```swift
/// let decision = CellSuppression.decide(
///     center: .init(base: 40, counts: [30]),
///     parts: ["2026-01": .init(base: 28, counts: [22]), "2026-02": .init(base: 12, counts: [8])], minimum: 11)
/// // decision.center == true; decision.parts == [] (February's 8 are too few, and January would reveal them)
/// ```
enum CellSuppression {
    struct Figure: Equatable {
        var base: Int
        var counts: [Int]
    }

    struct Decision: Equatable {
        var center: Bool
        var parts: Set<String>
        /// The parts the center's figure counts (nil: all of them).
        var counted: Set<String>? = nil
        /// The parts left after the decision by base alone, before the counts were looked
        /// at (what a second partition is checked against by base).
        var byBase: Set<String> = []

        /// Two decisions are equal when they publish the same.
        static func == (a: Decision, b: Decision) -> Bool { a.center == b.center && a.parts == b.parts && a.counted == b.counted }
    }

    /// For figures that change over time by whole parts (the weeks since enrollment, which
    /// a cohort enters once its week has ended): the center counts only the parts whose own
    /// cell is published, so a part entering changes the center by a published cell, never
    /// by a group of 1 to `minimum − 1`.
    static func decideSummed(parts: [String: Figure], minimum: Int) -> Decision {
        func safe(_ counts: [Int]) -> Bool { counts.allSatisfy { $0 == 0 || $0 >= minimum } }
        let published = Set(parts.filter { part in
            part.value.base >= minimum && safe(part.value.counts) && ((part.value.counts.first ?? 0) == 0 || (part.value.counts.first ?? 0) >= minimum)
        }.keys)
        return Decision(center: true, parts: published, counted: published, byBase: Set(parts.filter { $0.value.base >= minimum }.keys))
    }

    /// `keepByBase` leaves out more parts after the decision by base (a second partition's
    /// parts that differ from the first's by a few): each part it leaves out has a base of
    /// at least `minimum`, so what is left out stays 0 or at least `minimum`.
    static func decide(center: Figure, parts: [String: Figure], minimum: Int, keepByBase: (String) -> Bool = { _ in true }) -> Decision {
        func safe(_ counts: [Int]) -> Bool { counts.allSatisfy { $0 == 0 || $0 >= minimum } }
        func publishable(_ counts: [Int]) -> Bool { safe(counts) && ((counts.first ?? 0) == 0 || (counts.first ?? 0) >= minimum) }
        guard safe([center.base]), publishable(center.counts) else { return Decision(center: false, parts: []) }
        let order = smallestFirst(parts)
        // By base.
        var published = Set(parts.filter { $0.value.base >= minimum }.keys)
        var left = center.base - published.reduce(0) { $0 + (parts[$1]?.base ?? 0) }
        for key in order where !safe([left]) && published.contains(key) {
            published.remove(key)
            left += parts[key]?.base ?? 0
        }
        published = published.filter(keepByBase)
        let byBase = published
        // By counts.
        published = published.filter { publishable(parts[$0]?.counts ?? []) }
        var remainder = center.counts
        for key in published { remainder = zip(remainder, parts[key]?.counts ?? []).map { $0 - $1 } }
        for key in order where !safe(remainder) && published.contains(key) {
            published.remove(key)
            remainder = zip(remainder, parts[key]?.counts ?? []).map { $0 + $1 }
        }
        return Decision(center: true, parts: published, byBase: byBase)
    }

    /// Which parts of a second partition of the center (the caseloads, which leave out the
    /// patients in none) may be published beside the first (the cohorts, decided already):
    /// as `decide` would for the second alone, and then no published part of the second
    /// differs from a published part of the first by a group of 1 to `minimum − 1`, first
    /// by base (against the first's parts left after its decision by base), then in every
    /// count (against those published). `overlap[second][first]` is what the two share.
    ///
    /// Two parts of one partition are disjoint, and the center less any published part is
    /// the other published parts and a remainder of 0 or at least `minimum` (`decide`);
    /// a part of one partition and one of the other are compared here, pair by pair.
    /// Sums of three or more results are not (docs/security-model.md, residual risks).
    static func decideCrossing(
        center: Figure, parts: [String: Figure], crossing first: [String: Figure], crossingByBase: Set<String>, crossingPublished: Set<String>,
        overlap: [String: [String: Figure]], minimum: Int
    ) -> Set<String> {
        func safe(_ count: Int) -> Bool { count == 0 || count >= minimum }
        func shared(_ part: String, _ other: String) -> Figure {
            overlap[part]?[other] ?? Figure(base: 0, counts: [Int](repeating: 0, count: center.counts.count))
        }
        let byBase: (String) -> Bool = { part in
            crossingByBase.allSatisfy { other in
                safe((parts[part]?.base ?? 0) + (first[other]?.base ?? 0) - 2 * shared(part, other).base)
            }
        }
        var published = decide(center: center, parts: parts, minimum: minimum, keepByBase: byBase).parts
        for part in smallestFirst(parts) where published.contains(part) {
            let counts = parts[part]?.counts ?? []
            for other in crossingPublished {
                let differences = zip(zip(counts, first[other]?.counts ?? []), shared(part, other).counts).map { $0.0 + $0.1 - 2 * $1 }
                if !differences.allSatisfy(safe) {
                    // Leaving out a published part adds 0 or at least `minimum` to every
                    // count of what the center's figure has beyond the published parts.
                    published.remove(part)
                    break
                }
            }
        }
        return published
    }

    /// Smallest base first; ties by key, so the decision is the same every time.
    private static func smallestFirst(_ parts: [String: Figure]) -> [String] {
        parts.keys.sorted { a, b in
            let (na, nb) = (parts[a]?.base ?? 0, parts[b]?.base ?? 0)
            return na != nb ? na < nb : a < b
        }
    }
}
