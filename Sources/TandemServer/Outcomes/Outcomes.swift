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

    public init(enrolled: [MemberID: Int], entries: [JournalMetrics], notes: [(patient: MemberID, day: Int)]) {
        self.enrolled = enrolled
        self.entries = entries
        self.notes = notes
    }

    /// The counted patients as of `nowMillis`: those whose `aggregate` consent is active
    /// (neither revoked nor expired) at that time. Nothing is cached: a revoke leaves the
    /// patient out of every report read after its commit.
    public static func read(in store: some PullReads, nowMillis: Int64) throws -> OutcomePopulation {
        let consenting = Set(try store.consents(to: .center).filter { $0.scope == .aggregate && $0.isActive(atMillis: nowMillis) }.map(\.patient))
        // Only patients consent (the push rules); a member whose role changed is not counted.
        let patients = Set(try store.names(of: consenting).filter { $0.value.role == .patient }.keys)
        let enrolled = try store.enrolledMillis(of: patients).mapValues { Int($0 / 86_400_000) }
        return OutcomePopulation(enrolled: enrolled, entries: try store.countedEntries(of: patients), notes: try store.noteDays(about: patients))
    }
}

/// What a report asks for: a range of days (snapped to whole weeks), a cohort, and the
/// smallest cell that may be published.
public struct OutcomeQuery: Sendable, Hashable {
    public var fromDay: Int?
    public var toDay: Int?
    /// `YYYY-MM`: the patients who enrolled that month.
    public var cohort: String?
    public var minimumCell: Int

    /// The CMS rule: no cell of 1 to 10. A center may ask for more, never less.
    public static let smallestMinimumCell = 11

    public init(fromDay: Int? = nil, toDay: Int? = nil, cohort: String? = nil, minimumCell: Int = smallestMinimumCell) {
        self.fromDay = fromDay
        self.toDay = toDay
        self.cohort = cohort
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
    /// - Throws: `ServerError.badRequest` for a range longer than `maxWeeks`.
    public static func report(_ population: OutcomePopulation, _ query: OutcomeQuery, today: Int) throws -> OutcomeReport {
        // Only weeks that have ended: a week still under way would change as it goes.
        let lastSunday = monday(of: today) - 1
        let to = min(monday(of: query.toDay ?? lastSunday) + 6, lastSunday)
        let from = monday(of: query.fromDay ?? (to - 12 * 7 + 1))
        guard (to - from + 1) / 7 <= maxWeeks else { throw ServerError.badRequest("A report covers at most \(maxWeeks) weeks.") }
        let counting = Counting(population, minimum: query.minimumCell, today: today)
        let group = query.cohort
        var weeks: [OutcomeWeek] = []
        for start in stride(from: from, through: to - 6, by: 7) {
            // A week's figures rest on the patients enrolled by its end (the week's base):
            // enrollment is not a behaviour, so what is suppressed never depends on what one
            // patient did.
            let end = start + 6
            func enrolled(_ patient: Counting.Patient) -> Bool { patient.enrolled <= end }
            weeks.append(OutcomeWeek(
                week: dayText(start),
                craving: counting.figure(.mean, group, base: enrolled) { $0.week(start)?.craving.mean.map { .value($0) } ?? nil },
                mood: counting.figure(.mean, group, base: enrolled) { $0.week(start)?.mood.mean.map { .value($0) } ?? nil },
                adherence: counting.figure(.share, group, base: enrolled) { .hit($0.week(start) != nil) },
                contact: counting.figure(.perPatient, group, base: enrolled) { .value(Double($0.notes[start] ?? 0)) }))
        }
        var sinceEnrollment: [OutcomeEnrollmentWeek] = []
        for week in 0..<enrollmentWeeks {
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
            from: dayText(from), to: dayText(max(to, from - 1)), cohort: group, minimumCell: query.minimumCell,
            countsRoundedTo: countsRoundedTo, weeks: weeks, sinceEnrollment: sinceEnrollment)
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
        self.patients = patients
        self.cohorts = cohorts
        cohortSizes = cohorts.indices.map { index in patients.count { $0.cohort == index } }
        cohortEnds = cohorts.map { cohort in Outcomes.endOfMonth(of: (try? LocalDate(parsing: cohort + "-01"))?.daysSince1970 ?? 0) }
    }

    /// One figure for `group` (a cohort; nil: the whole center). `base` says who the
    /// figure is about (enrolled by then; in a cohort that counts that week); a figure's
    /// population (`contribution` not nil) is drawn from them. Suppressed unless it, and every
    /// difference with the center's and the other cohorts' published figures, rests on 0 or
    /// at least `minimum` patients, and the group's base has at least `minimum` (or none).
    /// `summed`: the center's figure counts only the cohorts whose own cell is published
    /// (`CellSuppression.decideSummed`).
    func figure(
        _ kind: Kind, _ group: String?, base: (Patient) -> Bool, summed: Bool = false, _ contribution: (Patient) -> Contribution?
    ) -> OutcomeCell {
        var bases = [Int](repeating: 0, count: cohorts.count)
        var population = [Int](repeating: 0, count: cohorts.count)
        var hits = [Int](repeating: 0, count: cohorts.count)
        var values = [[Double]](repeating: [], count: cohorts.count)
        for patient in patients where base(patient) {
            bases[patient.cohort] += 1
            guard let given = contribution(patient) else { continue }
            population[patient.cohort] += 1
            switch given {
            case .hit(let hit): if hit { hits[patient.cohort] += 1 }
            case .value(let value): values[patient.cohort].append(value)
            }
        }
        func counts(_ n: Int, _ h: Int) -> [Int] { kind == .share ? [n, h, n - h] : [n] }
        var parts: [String: CellSuppression.Figure] = [:]
        for (index, cohort) in cohorts.enumerated() where bases[index] > 0 {
            parts[cohort] = .init(base: bases[index], counts: counts(population[index], hits[index]))
        }
        let decision = summed
            ? CellSuppression.decideSummed(parts: parts, minimum: minimum)
            : CellSuppression.decide(
                center: .init(base: bases.reduce(0, +), counts: counts(population.reduce(0, +), hits.reduce(0, +))), parts: parts, minimum: minimum)
        // The cohorts the shown figure counts.
        let shownCohorts: [Int]
        if let group {
            // A cohort nobody is in yet (its base empty) describes nobody: shown as such.
            guard decision.parts.contains(group) || (decision.center && parts[group] == nil) else { return .hidden }
            shownCohorts = cohorts.firstIndex(of: group).map { [$0] } ?? []
        } else {
            guard decision.center else { return .hidden }
            shownCohorts = cohorts.indices.filter { decision.counted?.contains(cohorts[$0]) ?? true }
        }
        let shown = shownCohorts.reduce(0) { $0 + population[$1] }
        let shownHits = shownCohorts.reduce(0) { $0 + hits[$1] }
        let shownValues = shownCohorts.flatMap { values[$0] }
        guard shown > 0 else { return OutcomeCell(suppressed: false, patients: 0) }
        let rounded = Int((Double(shown) / Double(Outcomes.countsRoundedTo)).rounded()) * Outcomes.countsRoundedTo
        switch kind {
        case .mean:
            let sorted = shownValues.sorted()
            let middle = sorted.count / 2
            let median = sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
            return OutcomeCell(
                suppressed: false, patients: rounded, mean: tenths(shownValues.reduce(0, +) / Double(shownValues.count)), median: tenths(median))
        case .share:
            return OutcomeCell(suppressed: false, patients: rounded, share: hundredths(Double(shownHits) / Double(shown)))
        case .perPatient:
            return OutcomeCell(suppressed: false, patients: rounded, perPatient: hundredths(shownValues.reduce(0, +) / Double(shown)))
        }
    }

    func tenths(_ value: Double) -> Double { (value * 10).rounded() / 10 }
    func hundredths(_ value: Double) -> Double { (value * 100).rounded() / 100 }
}
