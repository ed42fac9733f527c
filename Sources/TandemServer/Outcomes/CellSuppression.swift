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
        // No `byBase`: no second partition is crossed with summed figures (a caseload has
        // no figures by week since enrollment).
        return Decision(center: true, parts: published, counted: published)
    }

    static func decide(center: Figure, parts: [String: Figure], minimum: Int) -> Decision {
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
    /// patients in none) may be published beside the first (the cohorts, decided already).
    ///
    /// Together they make a table: a row per published part of the first and one for the
    /// rest of the center, a column per published part of the second and one for the rest;
    /// each cell is the patients in its row and its column (`overlap[second][first]`).
    /// Every published result (the center, a part of either) and every sum or difference of
    /// them that describes one group of patients is a union of cells; so each cell must be
    /// 0 or at least `minimum` in every count. While one is not, a part of the second is
    /// left out: the one whose column holds the cell, or, for a cell of the rest column, the
    /// one with the smallest base that shares that row (its column joins the rest). With no
    /// part of the second left, the rest column is the first's rows, which its own decision
    /// made safe; so the loop always ends safe. First by base (against the first's parts
    /// left after its decision by base), then by counts (against those published).
    static func decideCrossing(
        center: Figure, parts: [String: Figure], crossing first: [String: Figure], crossingByBase: Set<String>, crossingPublished: Set<String>,
        overlap: [String: [String: Figure]], minimum: Int
    ) -> Set<String> {
        var published = Set(parts.filter { $0.value.base > 0 }.keys)
        published = table(center, parts, first, rows: crossingByBase, columns: published, overlap, minimum) { [$0.base] }
        return table(center, parts, first, rows: crossingPublished, columns: published, overlap, minimum) { $0.counts }
    }

    /// The columns left once every cell of the table, by `measure`, is 0 or at least `minimum`.
    private static func table(
        _ center: Figure, _ parts: [String: Figure], _ first: [String: Figure], rows: Set<String>, columns: Set<String>,
        _ overlap: [String: [String: Figure]], _ minimum: Int, measure: (Figure) -> [Int]
    ) -> Set<String> {
        let zero = [Int](repeating: 0, count: measure(center).count)
        func safe(_ counts: [Int]) -> Bool { counts.allSatisfy { $0 == 0 || $0 >= minimum } }
        func minus(_ a: [Int], _ b: [Int]) -> [Int] { zip(a, b).map { $0 - $1 } }
        let rows = rows.sorted()
        let order = smallestFirst(parts)
        var columns = columns
        while true {
            let shown = order.filter(columns.contains)
            func cell(_ column: String, _ row: String) -> [Int] { overlap[column]?[row].map(measure) ?? zero }
            var offending: (column: String?, row: String?)?
            var restOfRest = measure(center)
            for column in shown {
                // The column's cells, and what it has in the rest of the center.
                var rest = parts[column].map(measure) ?? zero
                for row in rows {
                    if !safe(cell(column, row)) { offending = (column, row) }
                    rest = minus(rest, cell(column, row))
                }
                if !safe(rest) { offending = (column, nil) }
                restOfRest = minus(restOfRest, parts[column].map(measure) ?? zero)
                if offending != nil { break }
            }
            if offending == nil {
                // The rest column: each row outside every shown column, and the rest of both.
                for row in rows {
                    let inRow = first[row].map(measure) ?? zero
                    let outside = shown.reduce(inRow) { minus($0, cell($1, row)) }
                    if !safe(outside) {
                        offending = (nil, row)
                        break
                    }
                    restOfRest = minus(restOfRest, outside)
                }
            }
            if offending == nil && !safe(restOfRest) { offending = (nil, nil) }
            guard let offending else { return columns }
            if let column = offending.column {
                columns.remove(column)
            } else if let row = offending.row, let sharing = shown.first(where: { cell($0, row) != zero }) {
                columns.remove(sharing)
            } else if let smallest = shown.first {
                columns.remove(smallest)
            } else {
                return []
            }
        }
    }

    /// Smallest base first; ties by key, so the decision is the same every time.
    private static func smallestFirst(_ parts: [String: Figure]) -> [String] {
        parts.keys.sorted { a, b in
            let (na, nb) = (parts[a]?.base ?? 0, parts[b]?.base ?? 0)
            return na != nb ? na < nb : a < b
        }
    }
}
