public import TandemCore
public import TandemProtocol

/// What the center's statistics are counted from: the patients with an active `aggregate`
/// consent, their enrollment days, their entries' numbers and the days of the notes
/// about them. Read in one snapshot (`read(in:nowMillis:)`).
public struct OutcomePopulation: Sendable {
    /// Each counted patient's enrollment, as days since 1970 (UTC).
    public var enrolled: [MemberID: Int]
    public var entries: [JournalMetrics]
    public var notes: [(patient: MemberID, day: Int)]
    /// When each counted patient was in which mentor's caseload.
    public var caseloads: [CaseloadSpan]
    /// Every mentor of the center, by id: the caseloads a report may be asked for.
    public var mentors: [MemberID: String]

    public init(
        enrolled: [MemberID: Int], entries: [JournalMetrics], notes: [(patient: MemberID, day: Int)], caseloads: [CaseloadSpan] = [],
        mentors: [MemberID: String] = [:]
    ) {
        self.enrolled = enrolled
        self.entries = entries
        self.notes = notes
        self.caseloads = caseloads
        self.mentors = mentors
    }

    /// The counted patients as of `nowMillis`: those whose `aggregate` consent is active
    /// (neither revoked nor expired) at that time. Nothing is cached: a revoke leaves the
    /// patient out of every report read after its commit.
    public static func read(in store: some PullReads, nowMillis: Int64) throws -> OutcomePopulation {
        let consenting = Set(try store.consents(to: .center).filter { $0.scope == .aggregate && $0.isActive(atMillis: nowMillis) }.map(\.patient))
        // Only patients consent (the push rules); a member whose role changed is not counted.
        let patients = Set(try store.names(of: consenting).filter { $0.value.role == .patient }.keys)
        let enrolled = try store.enrolledMillis(of: patients).mapValues { Int($0 / 86_400_000) }
        return OutcomePopulation(
            enrolled: enrolled, entries: try store.countedEntries(of: patients), notes: try store.noteDays(about: patients),
            caseloads: try store.caseloadSpans(of: patients), mentors: try store.mentors())
    }
}

/// What a report asks for: a range of days (snapped to whole weeks), a cohort or a mentor's
/// caseload, and the smallest cell that may be published.
public struct OutcomeQuery: Sendable, Hashable {
    public var fromDay: Int?
    public var toDay: Int?
    /// `YYYY-MM`: the patients who enrolled that month.
    public var cohort: String?
    /// A mentor, by name or member id: the patients in their caseload.
    public var caseload: String?
    public var minimumCell: Int

    /// The CMS rule: no cell of 1 to 10. A center may ask for more, never less.
    public static let smallestMinimumCell = 11

    public init(fromDay: Int? = nil, toDay: Int? = nil, cohort: String? = nil, caseload: String? = nil, minimumCell: Int = smallestMinimumCell) {
        self.fromDay = fromDay
        self.toDay = toDay
        self.cohort = cohort
        self.caseload = caseload
        self.minimumCell = max(minimumCell, Self.smallestMinimumCell)
    }
}

/// The center's de-identified outcomes (PROTOCOL.md §9.19): weekly craving and mood,
/// journaling adherence and mentor contact; withdrawal symptoms and retention by week since
/// enrollment. Every figure is decided for the whole center and for every cohort at once
/// (`CellSuppression`), and depends only on its week and its population, never on the
/// range asked for; so two reports (overlapping ranges, a cohort and the center) never
/// differ by a group of 1 to `minimumCell − 1` patients.
public enum Outcomes {
    public static let countsRoundedTo = 5
    /// Weeks since enrollment shown: 0 to 12, the length of a detox programme's follow-up.
    public static let enrollmentWeeks = 13
    /// The longest range a report covers.
    public static let maxWeeks = 260

    /// The Monday of the week of `day` (days since 1970; 1970-01-01 was a Thursday).
    public static func monday(of day: Int) -> Int { day - ((day % 7) + 7 + 3) % 7 }

    /// The cohort of an enrollment day: its month, `YYYY-MM`.
    static func cohort(of day: Int) -> String {
        guard let date = try? LocalDate(daysSince1970: day) else { return "?" }
        return String(date.description.prefix(7))
    }

    /// The last day of the month of `day`.
    static func endOfMonth(of day: Int) -> Int {
        guard let date = try? LocalDate(daysSince1970: day) else { return day }
        let next = date.month == 12 ? (try? LocalDate(year: date.year + 1, month: 1, day: 1)) : (try? LocalDate(year: date.year, month: date.month + 1, day: 1))
        return (next?.daysSince1970 ?? day + 1) - 1
    }

    /// The report for `query`, made on `today` (days since 1970, the server's clock).
    /// - Throws: `ServerError.badRequest` for a range longer than `maxWeeks`, a cohort and a
    ///   caseload asked together, or a caseload no mentor (or more than one) is named.
    public static func report(_ population: OutcomePopulation, _ query: OutcomeQuery, today: Int) throws -> OutcomeReport {
        // Only weeks that have ended: a week still under way would change as it goes.
        let lastSunday = monday(of: today) - 1
        let to = min(monday(of: query.toDay ?? lastSunday) + 6, lastSunday)
        let from = monday(of: query.fromDay ?? (to - 12 * 7 + 1))
        guard (to - from + 1) / 7 <= maxWeeks else { throw ServerError.badRequest("A report covers at most \(maxWeeks) weeks.") }
        guard query.cohort == nil || query.caseload == nil else {
            throw ServerError.badRequest("Ask for a cohort or a caseload, not both: a caseload within a cohort is too few patients to count.")
        }
        let mentor = try query.caseload.map { try Self.mentor($0, among: population.mentors) }
        let counting = Counting(population, minimum: query.minimumCell, today: today)
        let group: Counting.Group =
            if let cohort = query.cohort { .cohort(cohort) } else if let mentor { .caseload(counting.mentorIndex[mentor.id]) } else { .center }
        var weeks: [OutcomeWeek] = []
        for start in stride(from: from, through: to - 6, by: 7) {
            // A week's figures rest on the patients enrolled by its end (the week's base):
            // enrollment is not a behaviour, so what is suppressed never depends on what one
            // patient did. A caseload is as it stood at the week's end.
            let end = start + 6
            let endMillis = Int64(end + 1) * 86_400_000 - 1
            func enrolled(_ patient: Counting.Patient) -> Bool { patient.enrolled <= end }
            func figure(_ kind: Counting.Kind, _ contribution: (Counting.Patient) -> Counting.Contribution?) -> OutcomeCell {
                counting.figure(kind, group, at: endMillis, base: enrolled, contribution)
            }
            weeks.append(OutcomeWeek(
                week: dayText(start),
                craving: figure(.mean) { $0.week(start)?.craving.mean.map { .value($0) } ?? nil },
                mood: figure(.mean) { $0.week(start)?.mood.mean.map { .value($0) } ?? nil },
                adherence: figure(.share) { .hit($0.week(start) != nil) },
                contact: figure(.perPatient) { .value(Double($0.notes[start] ?? 0)) }))
        }
        var sinceEnrollment: [OutcomeEnrollmentWeek] = []
        // Not per caseload: these figures take in whole cohorts, which a caseload splits.
        for week in 0..<enrollmentWeeks where mentor == nil {
            // A cohort enters week `week` whole, once every member's week has ended by the
            // last Sunday, and only when it has at least `minimumCell` patients: these
            // figures then change in steps of whole cohorts of at least that size, never by
            // one patient whose week just ended.
            func eligible(_ patient: Counting.Patient) -> Bool { counting.eligible(patient.cohort, week: week, lastSunday: lastSunday) }
            sinceEnrollment.append(OutcomeEnrollmentWeek(
                week: week,
                retention: counting.figure(.share, group, base: eligible, summed: true) { .hit($0.lastDay >= $0.enrolled + 7 * week) },
                withdrawal: Symptom.allCases.map { symptom in
                    OutcomeSymptom(symptom: symptom.rawValue, cell: counting.figure(.share, group, base: eligible, summed: true) { patient in
                        patient.enrollmentWeeks[week].map { .hit($0 & symptom.bit != 0) }
                    })
                }))
        }
        return OutcomeReport(
            from: dayText(from), to: dayText(max(to, from - 1)), cohort: query.cohort, caseload: mentor?.name, minimumCell: query.minimumCell,
            countsRoundedTo: countsRoundedTo, weeks: weeks, sinceEnrollment: sinceEnrollment)
    }

    /// The mentor `text` names: a member id, or the name of exactly one mentor.
    static func mentor(_ text: String, among mentors: [MemberID: String]) throws -> (id: MemberID, name: String) {
        if let id = try? MemberID(hex: text), let name = mentors[id] { return (id, name) }
        let named = mentors.filter { $0.value == text }
        guard let only = named.first else { throw ServerError.badRequest("No mentor is named \(text).") }
        guard named.count == 1 else {
            throw ServerError.badRequest("\(named.count) mentors are named \(text); give the member id instead (tandem admin members).")
        }
        return (only.key, only.value)
    }

    static func dayText(_ day: Int) -> String { (try? LocalDate(daysSince1970: max(0, day)))?.description ?? "1970-01-01" }
}

/// The counted patients, each reduced to what the figures ask of them.
struct Counting {
    struct Mean {
        var sum = 0
        var count = 0
        var mean: Double? { count > 0 ? Double(sum) / Double(count) : nil }
    }

    struct Week {
        var craving = Mean()
        var mood = Mean()
    }

    struct Patient {
        /// Its cohort's place in `cohorts`.
        var cohort: Int
        var enrolled: Int
        var lastDay = Int.min
        /// The Monday of `journaled`'s first week.
        var firstMonday = 0
        /// Week by week from `firstMonday`: the week's numbers, nil for a week without an entry.
        var journaled: [Week?] = []
        /// By Monday: notes written about the patient.
        var notes: [Int: Int] = [:]
        /// By week since enrollment: the symptoms reported, nil for a week without an entry.
        var enrollmentWeeks = [Int64?](repeating: nil, count: Outcomes.enrollmentWeeks)
        /// When the patient was in which caseload (its mentor's place in `mentors`).
        var spans: [(mentor: Int, span: CaseloadSpan)] = []

        /// The caseload the patient was in at `millis`: that of their only mentor then; nil
        /// with none, or with several (a patient shared by two mentors is in neither, so
        /// that no two caseloads overlap).
        func caseload(at millis: Int64) -> Int? {
            var found: Int?
            for (mentor, span) in spans where span.covers(millis) {
                if let found, found != mentor { return nil }
                found = mentor
            }
            return found
        }

        /// The numbers of the week that starts on `monday`, nil when the patient wrote nothing then.
        func week(_ monday: Int) -> Week? {
            let index = (monday - firstMonday) / 7
            return monday >= firstMonday && index < journaled.count ? journaled[index] : nil
        }

        /// Makes room for the week of `monday` and returns its place.
        mutating func slot(_ monday: Int) -> Int {
            if journaled.isEmpty { firstMonday = monday }
            if monday < firstMonday {
                // Entries come by day; an earlier one (another store's order) shifts the weeks.
                journaled.insert(contentsOf: [Week?](repeating: nil, count: (firstMonday - monday) / 7), at: 0)
                firstMonday = monday
            }
            let index = (monday - firstMonday) / 7
            if index >= journaled.count { journaled.append(contentsOf: [Week?](repeating: nil, count: index - journaled.count + 1)) }
            return index
        }
    }

    /// What one patient gives a figure: a number, or whether they count among the hits.
    enum Contribution {
        case value(Double)
        case hit(Bool)
    }

    /// Whom a figure is shown for.
    enum Group {
        case center
        /// A cohort, `YYYY-MM`.
        case cohort(String)
        /// A mentor's caseload, by the mentor's place in `mentors` (nil, which
        /// `Outcomes.report` never asks, shows nothing).
        case caseload(Int?)
    }

    enum Kind {
        /// The mean and median of the patients' numbers.
        case mean
        /// The share of the population who are hits.
        case share
        /// The sum of the numbers per patient.
        case perPatient
    }

    /// In id order: the same population gives the same figures, to the last bit.
    let patients: [Patient]
    /// The cohorts (`YYYY-MM`), in order.
    let cohorts: [String]
    /// Each cohort's counted patients, and the last day of its month.
    let cohortSizes: [Int]
    let cohortEnds: [Int]
    /// The center's mentors, in id order, and each one's place.
    let mentors: [MemberID]
    let mentorIndex: [MemberID: Int]
    let minimum: Int

    /// Whether a cohort counts in week `week` since enrollment: every member's week has
    /// ended by `lastSunday`, and the cohort has at least `minimum` patients.
    func eligible(_ cohort: Int, week: Int, lastSunday: Int) -> Bool {
        cohortSizes[cohort] >= minimum && cohortEnds[cohort] + 7 * week + 6 <= lastSunday
    }

    init(_ population: OutcomePopulation, minimum: Int, today: Int) {
        self.minimum = minimum
        let ids = population.enrolled.keys.sorted()
        let cohorts = Set(population.enrolled.values.map(Outcomes.cohort(of:))).sorted()
        let cohortIndex = Dictionary(uniqueKeysWithValues: cohorts.enumerated().map { ($1, $0) })
        let index = Dictionary(uniqueKeysWithValues: ids.enumerated().map { ($1, $0) })
        var patients = ids.map { id in
            let day = population.enrolled[id] ?? 0
            return Patient(cohort: cohortIndex[Outcomes.cohort(of: day)] ?? 0, enrolled: day)
        }
        // Each patient is changed in place: a copy taken out and put back would copy its
        // weeks at every entry. A push's entries are one patient's, and come together: the
        // last one's place is looked up again only when the patient changes.
        var last: (id: MemberID, at: Int)?
        for entry in population.entries {
            let at: Int
            if let last, last.id == entry.patient {
                at = last.at
            } else {
                guard let found = index[entry.patient] else { continue }
                at = found
                last = (entry.patient, found)
            }
            // Only days a patient can have journaled as a counted patient: from a week
            // before enrollment (an entry written offline) to today. A made-up date far
            // away would otherwise stretch their weeks (and keep them "still journaling").
            let offset = entry.day - patients[at].enrolled
            guard offset >= -7, entry.day <= today else { continue }
            patients[at].lastDay = max(patients[at].lastDay, entry.day)
            let slot = patients[at].slot(Outcomes.monday(of: entry.day))
            var week = patients[at].journaled[slot] ?? Week()
            if let craving = entry.craving {
                week.craving.sum += craving
                week.craving.count += 1
            }
            if let mood = entry.mood {
                week.mood.sum += mood
                week.mood.count += 1
            }
            patients[at].journaled[slot] = week
            // Enrollment is a UTC day, entries are local: the evening before (west of UTC)
            // is still the first week.
            let since = max(0, offset) / 7
            if offset >= -1, since < Outcomes.enrollmentWeeks {
                patients[at].enrollmentWeeks[since] = (patients[at].enrollmentWeeks[since] ?? 0) | entry.symptoms
            }
        }
        for note in population.notes {
            guard let at = index[note.patient] else { continue }
            patients[at].notes[Outcomes.monday(of: note.day), default: 0] += 1
        }
        mentors = population.mentors.keys.sorted()
        let mentorIndex = Dictionary(uniqueKeysWithValues: mentors.enumerated().map { ($1, $0) })
        for span in population.caseloads {
            guard let at = index[span.patient], let mentor = mentorIndex[span.mentor] else { continue }
            patients[at].spans.append((mentor, span))
        }
        self.mentorIndex = mentorIndex
        self.patients = patients
        self.cohorts = cohorts
        cohortSizes = cohorts.indices.map { index in patients.count { $0.cohort == index } }
        cohortEnds = cohorts.map { cohort in Outcomes.endOfMonth(of: (try? LocalDate(parsing: cohort + "-01"))?.daysSince1970 ?? 0) }
    }

    /// What a figure counts in each part of a partition: its base, population and hits
    /// (a share), and its numbers (a mean or a sum).
    struct Tally {
        var base: [Int]
        var population: [Int]
        var hits: [Int]
        var values: [[Double]]

        init(_ parts: Int) {
            base = [Int](repeating: 0, count: parts)
            population = base
            hits = base
            values = [[Double]](repeating: [], count: parts)
        }

        mutating func add(_ part: Int, _ given: Contribution?, values keep: Bool = true) {
            base[part] += 1
            guard let given else { return }
            population[part] += 1
            switch given {
            case .hit(let hit): if hit { hits[part] += 1 }
            case .value(let value): if keep { values[part].append(value) }
            }
        }

        func figure(_ part: Int, _ kind: Kind) -> CellSuppression.Figure {
            .init(base: base[part], counts: kind == .share ? [population[part], hits[part], population[part] - hits[part]] : [population[part]])
        }
    }

    /// One figure for `group`. `base` says who the figure is about (enrolled by then; in a
    /// cohort that counts that week); a figure's population (`contribution` not nil) is
    /// drawn from them; a caseload is as it stood at `instant` (ms). Suppressed unless it,
    /// and every difference with the center's and the other groups' published figures,
    /// rests on 0 or at least `minimum` patients, and the group's base has at least
    /// `minimum` (or none). The cohorts are decided first, as if no caseload were ever
    /// asked for; a caseload is then published only where it, the center and the cohorts
    /// published beside it differ by no group of 1 to `minimum − 1`
    /// (`CellSuppression.decideCrossing`). `summed`: the center's figure counts only the
    /// cohorts whose own cell is published (`CellSuppression.decideSummed`).
    func figure(
        _ kind: Kind, _ group: Group, at instant: Int64 = 0, base: (Patient) -> Bool, summed: Bool = false,
        _ contribution: (Patient) -> Contribution?
    ) -> OutcomeCell {
        let crossing: Bool
        if case .caseload = group { crossing = true } else { crossing = false }
        var byCohort = Tally(cohorts.count)
        var byCaseload = Tally(crossing ? mentors.count : 0)
        // Cohort × caseload: how much each pair shares.
        var shared = Tally(crossing ? cohorts.count * mentors.count : 0)
        for patient in patients where base(patient) {
            let given = contribution(patient)
            byCohort.add(patient.cohort, given)
            if crossing, let caseload = patient.caseload(at: instant) {
                byCaseload.add(caseload, given)
                shared.add(patient.cohort * mentors.count + caseload, given, values: false)
            }
        }
        var parts: [String: CellSuppression.Figure] = [:]
        for (index, cohort) in cohorts.enumerated() where byCohort.base[index] > 0 { parts[cohort] = byCohort.figure(index, kind) }
        let center = CellSuppression.Figure(
            base: byCohort.base.reduce(0, +),
            counts: kind == .share
                ? [byCohort.population.reduce(0, +), byCohort.hits.reduce(0, +), byCohort.population.reduce(0, +) - byCohort.hits.reduce(0, +)]
                : [byCohort.population.reduce(0, +)])
        let decision = summed
            ? CellSuppression.decideSummed(parts: parts, minimum: minimum)
            : CellSuppression.decide(center: center, parts: parts, minimum: minimum)
        // Who the shown figure counts.
        let shown: (population: Int, hits: Int, values: [Double])
        switch group {
        case .center:
            guard decision.center else { return .hidden }
            let counted = cohorts.indices.filter { decision.counted?.contains(cohorts[$0]) ?? true }
            shown = (counted.reduce(0) { $0 + byCohort.population[$1] }, counted.reduce(0) { $0 + byCohort.hits[$1] }, counted.flatMap { byCohort.values[$0] })
        case .cohort(let cohort):
            // A cohort with nobody counted (its base empty) is hidden as a small one is: "0"
            // against "hidden" would tell whether the one patient who enrolled that month
            // consents to be counted.
            guard decision.parts.contains(cohort), let index = cohorts.firstIndex(of: cohort) else { return .hidden }
            shown = (byCohort.population[index], byCohort.hits[index], byCohort.values[index])
        case .caseload(let mentor):
            guard decision.center, !summed else { return .hidden }
            var caseloads: [String: CellSuppression.Figure] = [:]
            var overlap: [String: [String: CellSuppression.Figure]] = [:]
            for (index, id) in mentors.enumerated() where byCaseload.base[index] > 0 {
                caseloads[id.hex] = byCaseload.figure(index, kind)
                for (cohortIndex, cohort) in cohorts.enumerated() {
                    overlap[id.hex, default: [:]][cohort] = shared.figure(cohortIndex * mentors.count + index, kind)
                }
            }
            let published = CellSuppression.decideCrossing(
                center: center, parts: caseloads, crossing: parts, crossingByBase: decision.byBase, crossingPublished: decision.parts,
                overlap: overlap, minimum: minimum)
            // An empty caseload is hidden as a small one is: staff choose caseloads, and "0"
            // against "hidden" for a caseload of one would tell whether that patient consents.
            guard let mentor, published.contains(mentors[mentor].hex) else { return .hidden }
            shown = (byCaseload.population[mentor], byCaseload.hits[mentor], byCaseload.values[mentor])
        }
        guard shown.population > 0 else { return OutcomeCell(suppressed: false, patients: 0) }
        let rounded = Int((Double(shown.population) / Double(Outcomes.countsRoundedTo)).rounded()) * Outcomes.countsRoundedTo
        switch kind {
        case .mean:
            let sorted = shown.values.sorted()
            let middle = sorted.count / 2
            let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
            return OutcomeCell(
                suppressed: false, patients: rounded, mean: tenths(shown.values.reduce(0, +) / Double(shown.values.count)), median: tenths(median))
        case .share:
            return OutcomeCell(suppressed: false, patients: rounded, share: hundredths(Double(shown.hits) / Double(shown.population)))
        case .perPatient:
            return OutcomeCell(suppressed: false, patients: rounded, perPatient: hundredths(shown.values.reduce(0, +) / Double(shown.population)))
        }
    }

    func tenths(_ value: Double) -> Double { (value * 10).rounded() / 10 }
    func hundredths(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}
