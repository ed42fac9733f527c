import Foundation
import TandemCore
import TandemProtocol
@testable import TandemServer
import TandemTestSupport
import TandemWorkload
import Testing

/// The center's statistics never describe 1 to 10 patients (issue 16, PROTOCOL.md §9.19):
/// not in a published cell, and not in the difference between two published results, over
/// random populations and random pairs of queries (overlapping ranges, a cohort and the
/// center, two cohorts, mentors' caseloads that change over time beside them). Which patients each cell rests on comes from a model of the
/// definitions written apart from `Outcomes`; the published counts must agree with it.
@Suite("Outcomes: de-identification")
struct OutcomesPropertyTests {
    static let minimum = 11
    /// 2026-09-07, a Monday.
    static let firstMonday = 20_703

    /// A random center: 0–90 patients enrolled over four months, each journaling for a
    /// while with a chance to stop, some with notes.
    struct World {
        var population: OutcomePopulation
        var today: Int

        init(seed: UInt64, patients: Int? = nil) {
            var rng = SeededGenerator(seed: seed)
            let count = patients ?? Int.random(in: 0...90, using: &rng)
            var enrolled: [MemberID: Int] = [:]
            var entries: [JournalMetrics] = []
            var notes: [(patient: MemberID, day: Int)] = []
            for _ in 0..<count {
                let id = MemberID.random(using: &rng)
                let start = firstMonday + Int.random(in: 0..<120, using: &rng)
                enrolled[id] = start
                let span = Int.random(in: 0...150, using: &rng)
                let rate = Double.random(in: 0.1...1, using: &rng)
                for day in start..<(start + span) where rng.chance(rate) {
                    entries.append(JournalMetrics(
                        patient: id, day: day, mood: rng.chance(0.8) ? Int.random(in: 0...10, using: &rng) : nil,
                        craving: rng.chance(0.8) ? Int.random(in: 0...10, using: &rng) : nil,
                        symptoms: Symptom.allCases.reduce(Int64(0)) { bits, symptom in rng.chance(0.3) ? bits | symptom.bit : bits }))
                }
                // Now and then a date nobody journaled on as a counted patient: long before
                // enrollment or after today. Such entries are not counted.
                if rng.chance(0.1) {
                    entries.append(JournalMetrics(
                        patient: id, day: rng.chance(0.5) ? 100 : 2_900_000, mood: 5, craving: 5, symptoms: Symptom.anxiety.bit))
                }
                if rng.chance(0.5) { notes.append((id, start + Int.random(in: 0..<60, using: &rng))) }
            }
            today = firstMonday + Int.random(in: 30...200, using: &rng)
            // Caseloads, drawn apart so that the rest of a seed's center stays as it was: up
            // to 6 mentors; most patients assigned to one from around their enrollment, some
            // moved to another later, some unassigned, a few shared by two at once.
            var other = SeededGenerator(seed: seed ^ 0xCA5E_10AD)
            let mentors = (0..<Int.random(in: 0...6, using: &other)).map { _ in MemberID.random(using: &other) }
            var spans: [CaseloadSpan] = []
            for (id, day) in enrolled.sorted(by: { $0.key < $1.key }) where !mentors.isEmpty && other.chance(0.85) {
                func millis(_ day: Int) -> Int64 { Int64(day) * 86_400_000 + Int64.random(in: 0..<86_400_000, using: &other) }
                let first = mentors.randomElement(using: &other)!
                let since = millis(day + Int.random(in: -3...10, using: &other))
                let moved = other.chance(0.3) ? millis(day + Int.random(in: 7...90, using: &other)) : nil
                spans.append(CaseloadSpan(mentor: first, patient: id, since: since, until: moved))
                if let moved, other.chance(0.8) {
                    spans.append(CaseloadSpan(mentor: mentors.randomElement(using: &other)!, patient: id, since: moved, until: nil))
                }
                if other.chance(0.1), let second = mentors.randomElement(using: &other), second != first {
                    spans.append(CaseloadSpan(mentor: second, patient: id, since: millis(day + Int.random(in: 0...40, using: &other)), until: nil))
                }
            }
            population = OutcomePopulation(
                enrolled: enrolled, entries: entries, notes: notes, caseloads: spans,
                mentors: Dictionary(uniqueKeysWithValues: mentors.enumerated().map { ($1, "Mentor \($0)") }))
        }

        /// The patients in `mentor`'s caseload at `millis`: those whose only mentor then it is.
        func caseload(_ mentor: MemberID, at millis: Int64) -> Set<MemberID> {
            var mentorsOf: [MemberID: Set<MemberID>] = [:]
            for span in population.caseloads where span.since <= millis && (span.until.map { millis < $0 } ?? true) {
                mentorsOf[span.patient, default: []].insert(span.mentor)
            }
            return Set(mentorsOf.filter { $0.value == [mentor] }.keys)
        }

        func cohort(_ id: MemberID) -> String {
            String((try! LocalDate(daysSince1970: population.enrolled[id]!)).description.prefix(7))
        }
        var cohorts: [String] { Set(population.enrolled.keys.map(cohort)).sorted() }
    }

    /// One figure's patients in the model: whom it is about (its base), those it rests on,
    /// and for a share its hits.
    struct Sets {
        var base: Set<MemberID>
        var population: Set<MemberID>
        var hits: Set<MemberID>?
        /// Every group of patients the figure counts (a share's population, hits and misses).
        var groups: [Set<MemberID>] { hits.map { [population, $0, population.subtracting($0)] } ?? [population] }
    }

    static func safe(_ sets: Sets) -> Bool {
        sets.groups.allSatisfy { !describesAFew($0.count) } && !describesAFew(sets.population.count)
    }

    /// Whom a query asks for.
    enum Group: Hashable, CustomStringConvertible {
        case center
        case cohort(String)
        case caseload(MemberID)

        var description: String {
            switch self {
            case .center: "center"
            case .cohort(let cohort): cohort
            case .caseload(let mentor): "caseload \(mentor.hex.prefix(6))"
            }
        }
    }

    /// The model: which patients of `group` each figure of a report made on `today` rests
    /// on, keyed by table, week and measure. Written from PROTOCOL.md §9.19, not from
    /// `Outcomes`.
    static func model(_ world: World, group: Group, report: OutcomeReport, today: Int) -> [String: Sets] {
        let enrolled = world.population.enrolled
        // Entries count from a week before enrollment to today.
        var byPatient: [MemberID: [JournalMetrics]] = [:]
        for entry in world.population.entries where entry.day <= today && entry.day >= enrolled[entry.patient]! - 7 {
            byPatient[entry.patient, default: []].append(entry)
        }
        let lastSunday = Outcomes.monday(of: today) - 1
        let all = Set(enrolled.keys)
        var sets: [String: Sets] = [:]
        for row in report.weeks {
            let monday = try! LocalDate(parsing: row.week).daysSince1970
            let week = monday...(monday + 6)
            func inWeek(_ id: MemberID) -> [JournalMetrics] { (byPatient[id] ?? []).filter { week.contains($0.day) } }
            // A caseload as it stood at the week's end.
            func inGroup(_ ids: Set<MemberID>) -> Set<MemberID> {
                switch group {
                case .center: ids
                case .cohort(let cohort): ids.filter { world.cohort($0) == cohort }
                case .caseload(let mentor): ids.intersection(world.caseload(mentor, at: Int64(monday + 7) * 86_400_000 - 1))
                }
            }
            let base = inGroup(all.filter { enrolled[$0]! <= monday + 6 })
            sets["craving \(row.week)"] = Sets(base: base, population: base.filter { inWeek($0).contains { $0.craving != nil } })
            sets["mood \(row.week)"] = Sets(base: base, population: base.filter { inWeek($0).contains { $0.mood != nil } })
            sets["adherence \(row.week)"] = Sets(base: base, population: base, hits: base.filter { !inWeek($0).isEmpty })
            sets["contact \(row.week)"] = Sets(base: base, population: base)
        }
        // Weeks since enrollment: whole cohorts of at least the minimum, once every member's
        // week has ended by the last Sunday; the center counts the cohorts whose own figure
        // is published.
        let cohorts = Dictionary(grouping: all, by: world.cohort)
        func endOfMonth(_ cohort: String) -> Int {
            let first = try! LocalDate(parsing: cohort + "-01")
            let next = first.month == 12 ? try! LocalDate(year: first.year + 1, month: 1, day: 1) : try! LocalDate(year: first.year, month: first.month + 1, day: 1)
            return next.daysSince1970 - 1
        }
        for row in report.sinceEnrollment {
            func start(_ id: MemberID) -> Int { enrolled[id]! + 7 * row.week }
            func journaled(_ id: MemberID) -> [JournalMetrics] {
                (byPatient[id] ?? []).filter { entry in
                    let offset = entry.day - enrolled[id]!
                    return offset >= -1 && max(0, offset) / 7 == row.week
                }
            }
            var figures: [String: [String: Sets]] = [:]
            for (cohort, members) in cohorts where members.count >= minimum && endOfMonth(cohort) + 7 * row.week + 6 <= lastSunday {
                let base = Set(members)
                figures["retention", default: [:]][cohort] = Sets(
                    base: base, population: base, hits: base.filter { id in (byPatient[id] ?? []).contains { $0.day >= start(id) } })
                let wrote = base.filter { !journaled($0).isEmpty }
                for symptom in Symptom.allCases {
                    figures[symptom.rawValue, default: [:]][cohort] = Sets(
                        base: base, population: wrote, hits: wrote.filter { id in journaled(id).contains { $0.symptoms & symptom.bit != 0 } })
                }
            }
            for measure in ["retention"] + Symptom.allCases.map(\.rawValue) {
                let byCohort = figures[measure] ?? [:]
                if case .cohort(let cohort) = group {
                    sets["\(measure) \(row.week)"] = byCohort[cohort] ?? Sets(base: [], population: [], hits: [])
                } else {
                    let counted = byCohort.values.filter(safe)
                    sets["\(measure) \(row.week)"] = Sets(
                        base: counted.reduce(into: Set<MemberID>()) { $0.formUnion($1.base) },
                        population: counted.reduce(into: Set<MemberID>()) { $0.formUnion($1.population) },
                        hits: counted.reduce(into: Set<MemberID>()) { $0.formUnion($1.hits ?? []) })
                }
            }
        }
        return sets
    }

    static func cells(_ report: OutcomeReport) -> [String: OutcomeCell] {
        var cells: [String: OutcomeCell] = [:]
        for row in report.weeks {
            cells["craving \(row.week)"] = row.craving
            cells["mood \(row.week)"] = row.mood
            cells["adherence \(row.week)"] = row.adherence
            cells["contact \(row.week)"] = row.contact
        }
        for row in report.sinceEnrollment {
            cells["retention \(row.week)"] = row.retention
            for symptom in row.withdrawal { cells["\(symptom.symptom) \(row.week)"] = symptom.cell }
        }
        return cells
    }

    static func describesAFew(_ count: Int) -> Bool { (1..<minimum).contains(count) }

    @Test("no published cell, and no difference between two published results, describes 1 to 10 patients", arguments: 0..<40)
    func noCellOrDifference_describesOneToTenPatients(seed: Int) throws {
        let world = World(seed: UInt64(seed) &* 0x9E37_79B9 &+ 1)
        var rng = SeededGenerator(seed: UInt64(seed) + 1_000)
        let cohorts = world.cohorts
        let mentors = world.population.mentors.keys.sorted()
        // Random queries: ranges that overlap, the center, each cohort and each caseload, on
        // two days some days apart (figures must not move by a few patients as days pass).
        let later = world.today + Int.random(in: 1...30, using: &rng)
        func query(_ group: Group, from: Int, to: Int) -> OutcomeQuery {
            switch group {
            case .center: OutcomeQuery(fromDay: from, toDay: to, minimumCell: Self.minimum)
            case .cohort(let cohort): OutcomeQuery(fromDay: from, toDay: to, cohort: cohort, minimumCell: Self.minimum)
            // By name for one, by id for the other: both name the mentor.
            case .caseload(let mentor):
                OutcomeQuery(fromDay: from, toDay: to, caseload: from % 2 == 0 ? mentor.hex : world.population.mentors[mentor], minimumCell: Self.minimum)
            }
        }
        let groups: [Group] = [.center] + cohorts.map { .cohort($0) } + mentors.map { .caseload($0) }
        var queries: [(group: Group, query: OutcomeQuery, today: Int)] = []
        for _ in 0..<4 {
            let from = Self.firstMonday + Int.random(in: -20...150, using: &rng)
            let to = from + Int.random(in: 0...120, using: &rng)
            let group = groups.randomElement(using: &rng) ?? .center
            queries.append((group, query(group, from: from, to: to), rng.chance(0.5) ? world.today : later))
        }
        for today in [world.today, later] {
            for group in groups { queries.append((group, query(group, from: Self.firstMonday, to: Self.firstMonday + 200), today)) }
        }
        var published: [(group: Group, today: Int, key: String, sets: Sets)] = []
        var shownFigures = 0
        for (group, query, today) in queries {
            let report = try Outcomes.report(world.population, query, today: today)
            if case .caseload(let mentor) = group {
                #expect(report.caseload == world.population.mentors[mentor])
                #expect(report.sinceEnrollment.isEmpty)
            }
            let sets = Self.model(world, group: group, report: report, today: today)
            for (key, cell) in Self.cells(report) {
                let model = try #require(sets[key], "seed \(seed): the model has no figure \(key)")
                let name = "seed \(seed) \(key) \(group) on day \(today)"
                guard !cell.suppressed else { continue }
                // Whether a cell is shown at all (even as 0) never rests on a few patients.
                #expect(!Self.describesAFew(model.base.count), "\(name) is shown for a base of \(model.base.count) patients")
                // The published count is the model's, rounded: the model and the server agree.
                let rounded = Int((Double(model.population.count) / 5).rounded()) * 5
                #expect(cell.patients == rounded, "\(name): \(cell.patients ?? -1) for \(model.population.count) patients")
                for group in model.groups { #expect(!Self.describesAFew(group.count), "\(name) rests on \(group.count) patients") }
                published.append((group, today, key, model))
                if model.population.count > 0 { shownFigures += 1 }
            }
        }
        // Any two published results of one figure: what separates them is no group of 1 to 10.
        for (key, results) in Dictionary(grouping: published, by: \.key) {
            for (i, a) in results.enumerated() {
                for b in results[(i + 1)...] {
                    for (x, y) in zip(a.sets.groups, b.sets.groups) {
                        let difference = x.symmetricDifference(y).count
                        #expect(!Self.describesAFew(difference), """
                            seed \(seed) \(key): \(a.group) on day \(a.today) and \(b.group) on day \(b.today) differ by \(difference) patients
                            """)
                    }
                }
            }
            // The center less every cohort, or every caseload, published with it on one day:
            // no group of 1 to 10 either.
            for today in [world.today, later] {
                guard let center = results.first(where: { $0.group == .center && $0.today == today }) else { continue }
                for family in ["cohorts", "caseloads"] {
                    let parts = results.filter { result in
                        guard result.today == today else { return false }
                        switch result.group {
                        case .center: return false
                        case .cohort: return family == "cohorts"
                        case .caseload: return family == "caseloads"
                        }
                    }.map(\.sets)
                    for (index, group) in center.sets.groups.enumerated() {
                        let rest = parts.reduce(group) { $0.subtracting($1.groups[index]) }
                        #expect(!Self.describesAFew(rest.count), "seed \(seed) \(key): the center less its published \(family) is \(rest.count) patients")
                    }
                }
                // The table of published cohorts (and the rest of the center) by published
                // caseloads (and the rest): the center less a cohort less a caseload, and
                // every such sum, is a union of its cells; no cell is 1 to 10 patients.
                let onDay = results.filter { $0.today == today }
                let cohortSets = onDay.filter { if case .cohort = $0.group { true } else { false } }.map(\.sets)
                let caseloadSets = onDay.filter { if case .caseload = $0.group { true } else { false } }.map(\.sets)
                for index in center.sets.groups.indices {
                    let all = center.sets.groups[index]
                    func withRest(_ parts: [Set<MemberID>]) -> [Set<MemberID>] { parts + [parts.reduce(all) { $0.subtracting($1) }] }
                    for row in withRest(cohortSets.map { $0.groups[index] }) {
                        for column in withRest(caseloadSets.map { $0.groups[index] }) {
                            let cell = row.intersection(column).count
                            #expect(!Self.describesAFew(cell), "seed \(seed) \(key) on day \(today): a cell of cohorts by caseloads is \(cell) patients")
                        }
                    }
                }
            }
        }
        _ = shownFigures
    }

    /// A center of `cohorts` (each: how many patients enrolled on which day), every
    /// patient journaling every day until `today`; `caseload` says whom each patient (by
    /// place) is assigned to, from their enrollment.
    static func center(_ cohorts: [(count: Int, day: Int)], mentors: [MemberID], caseload: (Int) -> Int?, today: Int) -> OutcomePopulation {
        var rng = SeededGenerator(seed: 42)
        var enrolled: [MemberID: Int] = [:]
        var entries: [JournalMetrics] = []
        var spans: [CaseloadSpan] = []
        var place = 0
        for (count, day) in cohorts {
            for _ in 0..<count {
                let id = MemberID.random(using: &rng)
                enrolled[id] = day
                for entryDay in day..<today { entries.append(JournalMetrics(patient: id, day: entryDay, mood: 5, craving: place % 11, symptoms: 0)) }
                if let mentor = caseload(place) { spans.append(CaseloadSpan(mentor: mentors[mentor], patient: id, since: Int64(day) * 86_400_000, until: nil)) }
                place += 1
            }
        }
        return OutcomePopulation(
            enrolled: enrolled, entries: entries, notes: [], caseloads: spans,
            mentors: Dictionary(uniqueKeysWithValues: mentors.enumerated().map { ($1, "Mentor \($0)") }))
    }

    @Test func aCaseloadIsShown_andAReassignmentTodayChangesNoWeekThatHasEnded() throws {
        let mentors = [MemberID.random(), MemberID.random()]
        let today = Self.firstMonday + 24
        var population = Self.center([(30, Self.firstMonday)], mentors: mentors, caseload: { $0 < 15 ? 0 : 1 }, today: today)
        let query = OutcomeQuery(fromDay: Self.firstMonday, toDay: today, caseload: "Mentor 0")
        let before = try Outcomes.report(population, query, today: today)
        #expect(before.caseload == "Mentor 0")
        #expect(before.weeks.count == 3)
        #expect(before.weeks.allSatisfy { !$0.craving.suppressed && $0.craving.patients == 15 && $0.adherence.share == 1 })
        // By id as well as by name.
        #expect(try Outcomes.report(population, OutcomeQuery(fromDay: Self.firstMonday, toDay: today, caseload: mentors[0].hex), today: today) == before)

        // One patient moves from Mentor 0 to Mentor 1 today: the weeks that have ended are
        // counted as they stood at their ends.
        let moved = try #require(population.caseloads.firstIndex { $0.mentor == mentors[0] })
        let now = Int64(today) * 86_400_000 + 3_600_000
        population.caseloads[moved].until = now
        population.caseloads.append(CaseloadSpan(mentor: mentors[1], patient: population.caseloads[moved].patient, since: now, until: nil))
        #expect(try Outcomes.report(population, query, today: today) == before)
    }

    /// A caseload that is a cohort and 3 patients of another: the center less the caseload
    /// is 17 patients, but the caseload less the cohort is 3. Published beside the cohort,
    /// it would describe those 3.
    @Test func aCaseloadThatDiffersFromAPublishedCohortByAFew_isSuppressed() throws {
        let mentors = [MemberID.random()]
        let october = Self.firstMonday + 30
        let today = october + 21
        let population = Self.center([(20, Self.firstMonday), (20, october)], mentors: mentors, caseload: { $0 < 23 ? 0 : nil }, today: today)
        let range = (from: october, to: today)
        let september = try Outcomes.report(population, OutcomeQuery(fromDay: range.from, toDay: range.to, cohort: "2026-09"), today: today)
        #expect(september.weeks.allSatisfy { !$0.craving.suppressed && $0.craving.patients == 20 })
        let caseload = try Outcomes.report(population, OutcomeQuery(fromDay: range.from, toDay: range.to, caseload: "Mentor 0"), today: today)
        #expect(caseload.weeks.allSatisfy { $0.craving.suppressed && $0.adherence.suppressed })
        // With 12 of October's 35 instead, it differs from either cohort, and from the
        // center, by 12 or more.
        let wider = Self.center([(20, Self.firstMonday), (35, october)], mentors: mentors, caseload: { $0 < 32 ? 0 : nil }, today: today)
        let shown = try Outcomes.report(wider, OutcomeQuery(fromDay: range.from, toDay: range.to, caseload: "Mentor 0"), today: today)
        #expect(shown.weeks.allSatisfy { !$0.craving.suppressed && $0.craving.patients == 30 })
    }

    /// Cohorts of 30, 5 and 8: only the first is published, and the other two (13) are the
    /// rest of the center. A caseload of 12 of those 13 differs from the center and from the
    /// published cohort by 12 or more, but the center less the cohort less the caseload is
    /// one patient: each cell of cohorts by caseloads must be 0 or at least 11.
    @Test func aCaseloadThatLeavesAFewOfTheRestOfTheCenter_isSuppressed() throws {
        let mentors = [MemberID.random()]
        let (october, november) = (Self.firstMonday + 30, Self.firstMonday + 60)
        let today = november + 21
        let population = Self.center(
            [(30, Self.firstMonday), (5, october), (8, november)], mentors: mentors, caseload: { (30..<42).contains($0) ? 0 : nil }, today: today)
        let center = try Outcomes.report(population, OutcomeQuery(fromDay: november, toDay: today), today: today)
        #expect(center.weeks.allSatisfy { !$0.craving.suppressed && $0.craving.patients == 45 })
        let september = try Outcomes.report(population, OutcomeQuery(fromDay: november, toDay: today, cohort: "2026-09"), today: today)
        #expect(september.weeks.allSatisfy { !$0.craving.suppressed })
        let caseload = try Outcomes.report(population, OutcomeQuery(fromDay: november, toDay: today, caseload: "Mentor 0"), today: today)
        #expect(caseload.weeks.allSatisfy { $0.craving.suppressed && $0.adherence.suppressed && $0.contact.suppressed })
        // All 13 in the caseload: the rest of the center outside it is none.
        let whole = Self.center(
            [(30, Self.firstMonday), (5, october), (8, november)], mentors: mentors, caseload: { (30..<43).contains($0) ? 0 : nil }, today: today)
        let shown = try Outcomes.report(whole, OutcomeQuery(fromDay: november, toDay: today, caseload: "Mentor 0"), today: today)
        #expect(shown.weeks.allSatisfy { !$0.craving.suppressed && $0.craving.patients == 15 })
    }

    @Test func aCaseloadIsAskedAlone_byAMentorsNameOrId() throws {
        let mentors = [MemberID.random(), MemberID.random()]
        var population = Self.center([(30, Self.firstMonday)], mentors: mentors, caseload: { $0 % 2 }, today: Self.firstMonday + 20)
        func refusal(_ query: OutcomeQuery) -> String? {
            do {
                _ = try Outcomes.report(population, query, today: Self.firstMonday + 20)
                return nil
            } catch { return "\(error)" }
        }
        #expect(refusal(OutcomeQuery(cohort: "2026-09", caseload: "Mentor 0"))?.contains("not both") == true)
        #expect(refusal(OutcomeQuery(caseload: "Nobody"))?.contains("No mentor is named Nobody") == true)
        population.mentors[mentors[1]] = "Mentor 0"
        #expect(refusal(OutcomeQuery(caseload: "Mentor 0"))?.contains("2 mentors are named Mentor 0") == true)
        #expect(refusal(OutcomeQuery(caseload: mentors[1].hex)) == nil)
    }

    /// A caseload with nobody counted reads as a small one does: "0" against "suppressed"
    /// for a caseload of one would tell whether that patient consents to be counted.
    @Test func anEmptyCaseload_isSuppressedLikeASmallOne() throws {
        let mentors = [MemberID.random(), MemberID.random()]
        let today = Self.firstMonday + 24
        let population = Self.center([(30, Self.firstMonday)], mentors: mentors, caseload: { _ in 0 }, today: today)
        let empty = try Outcomes.report(population, OutcomeQuery(fromDay: Self.firstMonday, toDay: today, caseload: "Mentor 1"), today: today)
        #expect(!empty.weeks.isEmpty)
        #expect(empty.weeks.allSatisfy { $0.craving.suppressed && $0.adherence.suppressed && $0.contact.suppressed && $0.craving.patients == nil })
    }

    @Test func aSmallCohortIsSuppressed_andSoIsTheSmallestOtherThatWouldRevealIt() {
        typealias Figure = CellSuppression.Figure
        // February (8 patients) is too small; the center less January would then be February.
        #expect(CellSuppression.decide(
            center: Figure(base: 40, counts: [30]), parts: ["2026-01": Figure(base: 28, counts: [22]), "2026-02": Figure(base: 12, counts: [8])], minimum: 11)
            == .init(center: true, parts: []))
        // With a third cohort, suppressing the smallest other one (March) is enough: the
        // center less January is February and March, 20.
        #expect(CellSuppression.decide(
            center: Figure(base: 55, counts: [42]),
            parts: ["2026-01": Figure(base: 28, counts: [22]), "2026-02": Figure(base: 12, counts: [8]), "2026-03": Figure(base: 15, counts: [12])],
            minimum: 11)
            == .init(center: true, parts: ["2026-01"]))
        // A cohort of one is never shown, and whether the others are does not depend on what
        // that one patient did: January is left out by base, whatever P's count.
        for count in [0, 1] {
            #expect(CellSuppression.decide(
                center: Figure(base: 31, counts: [20 + count]), parts: ["2026-01": Figure(base: 30, counts: [20]), "2026-02": Figure(base: 1, counts: [count])],
                minimum: 11)
                == .init(center: true, parts: []))
        }
        // A share: 3 of 14 patients who did not is a group of 3.
        #expect(CellSuppression.decide(center: Figure(base: 14, counts: [14, 11, 3]), parts: ["2026-01": Figure(base: 14, counts: [14, 11, 3])], minimum: 11)
            == .init(center: false, parts: []))
        // Zero is nobody: 0 of 20 and 20 of 20 are published.
        #expect(CellSuppression.decide(center: Figure(base: 20, counts: [20, 0, 20]), parts: ["2026-01": Figure(base: 20, counts: [20, 0, 20])], minimum: 11)
            == .init(center: true, parts: ["2026-01"]))
        // Summed: the center counts only the cohorts whose own cell is published.
        #expect(CellSuppression.decideSummed(parts: ["2026-01": Figure(base: 20, counts: [12, 12, 0]), "2026-02": Figure(base: 15, counts: [3, 1, 2])], minimum: 11)
            == .init(center: true, parts: ["2026-01"], counted: ["2026-01"]))
    }

    /// A seeded center's report, kept as `Fixtures/outcomes/report.json` (regenerate with
    /// `TANDEM_REGENERATE_FIXTURES=1`): the CLI's golden files render it.
    @Test func aSeededCenter_givesTheKeptReport() throws {
        let world = World(seed: 16, patients: 80)
        let report = try Outcomes.report(world.population, OutcomeQuery(fromDay: Self.firstMonday + 21, toDay: Self.firstMonday + 100), today: Self.firstMonday + 130)
        let cells = Self.cells(report).values
        #expect(cells.contains { $0.suppressed } && cells.contains { !$0.suppressed && ($0.patients ?? 0) > 0 })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(report), as: UTF8.self) + "\n"
        let url = FixtureFiles.directory("outcomes").appendingPathComponent("report.json")
        if FixtureFiles.regenerate { try FixtureFiles.write(text, to: url) }
        #expect(try FixtureFiles.text(url) == text)
    }

    @Test func theMinimumCellIsNeverBelowEleven() {
        #expect(OutcomeQuery(minimumCell: 5).minimumCell == 11)
        #expect(OutcomeQuery(minimumCell: 20).minimumCell == 20)
    }

    @Test func aReportDependsOnWeeksNotOnTheRangeAsked() throws {
        let world = World(seed: 99)
        let wide = try Outcomes.report(world.population, OutcomeQuery(fromDay: Self.firstMonday, toDay: Self.firstMonday + 120), today: world.today)
        // A range starting mid-week and ending mid-week snaps to the same whole weeks.
        let narrow = try Outcomes.report(world.population, OutcomeQuery(fromDay: Self.firstMonday + 17, toDay: Self.firstMonday + 60), today: world.today)
        #expect(narrow.from == Outcomes.dayText(Self.firstMonday + 14))
        #expect(narrow.to == Outcomes.dayText(min(Self.firstMonday + 62, Outcomes.monday(of: world.today) - 1)))
        let wideWeeks = Dictionary(uniqueKeysWithValues: wide.weeks.map { ($0.week, $0) })
        for week in narrow.weeks { #expect(wideWeeks[week.week] == week) }
        #expect(narrow.sinceEnrollment == wide.sinceEnrollment)
    }
}
