public import TandemCore

/// A plausible synthetic center, from a seed: patients who enroll over the demo's span,
/// journal while they stay (craving and withdrawal fading, mood and sleep recovering, some
/// dropping out early), their mentors' notes, supervisors, and consents (most patients
/// let the center count them; many share metrics with their mentor). What
/// `tandem admin seed-demo` puts on a new server, and what the dashboard's benchmark reads.
/// Nothing in it comes from a person.
///
/// ```swift
/// let demo = DemoCenter(.init(patients: 200, days: 90, seed: 1, endMillis: now))
/// // enroll demo.patients[i] … then push demo.patientChanges(i, member: id, mentor: mentorID, replica: replica)
/// ```
public struct DemoCenter: Sendable {
    public struct Options: Sendable {
        public var patients: Int
        public var days: Int
        public var seed: UInt64
        /// The demo ends here (ms since 1970): no entry is later.
        public var endMillis: UInt64
        public var patientsPerMentor = 25
        public var mentorsPerSupervisor = 4
        /// Every patient enrolls on the first day, journals every day to the end and lets
        /// the center count them: the dashboard's benchmark (1,000 patients × 365 days).
        public var everyDay = false

        public init(patients: Int, days: Int, seed: UInt64, endMillis: UInt64) {
            self.patients = patients
            self.days = days
            self.seed = seed
            self.endMillis = endMillis
        }
    }

    public struct Person: Sendable {
        public var name: String
        public var role: Role
        /// When their first device enrolls: the center counts weeks from it.
        public var enrolledMillis: UInt64
    }

    public let options: Options
    public let patients: [Person]
    public let mentors: [Person]
    public let supervisors: [Person]

    static let dayMillis: UInt64 = 86_400_000
    static let firstNames = [
        "Alex", "Blair", "Casey", "Dana", "Eli", "Frankie", "Gale", "Harper", "Indy", "Jules", "Kai", "Lee", "Morgan", "Noor", "Oakley",
        "Parker", "Quinn", "Remy", "Sasha", "Tatum", "Uli", "Val", "Wren", "Xan", "Yael", "Zion", "Ari", "Bo", "Cam", "Drew",
        "Emery", "Finley", "Gray", "Hollis", "Ira", "Jody", "Kit", "Lane", "Milan", "Nico",
    ]

    public init(_ options: Options) {
        self.options = options
        let end = options.endMillis / Self.dayMillis
        let start = end - UInt64(max(1, options.days))
        var rng = SeededGenerator(seed: options.seed)
        func name(_ index: Int, _ suffix: String) -> String {
            let letters = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
            let base = "\(Self.firstNames[index % Self.firstNames.count]) \(letters[(index / Self.firstNames.count) % letters.count])."
            let round = index / (Self.firstNames.count * letters.count)
            return base + (round > 0 ? " \(round + 1)" : "") + suffix
        }
        // Staff of the programme are there before the first patient.
        let before = (start - 30) * Self.dayMillis + 9 * 3_600_000
        let mentorCount = max(1, (options.patients + options.patientsPerMentor - 1) / options.patientsPerMentor)
        let supervisorCount = max(1, (mentorCount + options.mentorsPerSupervisor - 1) / options.mentorsPerSupervisor)
        supervisors = (0..<supervisorCount).map { Person(name: name($0 + 7, " (supervisor)"), role: .supervisor, enrolledMillis: before) }
        mentors = (0..<mentorCount).map { Person(name: name($0 + 3, " (mentor)"), role: .mentor, enrolledMillis: before) }
        patients = (0..<options.patients).map { index in
            let day = options.everyDay ? start : start + UInt64.random(in: 0..<UInt64(max(1, options.days)), using: &rng)
            return Person(name: name(index, ""), role: .patient, enrolledMillis: day * Self.dayMillis + UInt64.random(in: 8...17, using: &rng) * 3_600_000)
        }
    }

    public func mentor(of patient: Int) -> Int { patient % mentors.count }
    public func supervisor(of mentor: Int) -> Int { mentor % supervisors.count }

    /// A patient's journal from their enrollment until they stop or the demo ends, and their
    /// consents: to the center (`aggregate`, most), and `metrics` or `journal` to `mentor`.
    /// - Throws: `TandemCoreError` only if the generator breaks a field rule (a bug).
    public func patientChanges(_ index: Int, member: MemberID, mentor: MemberID, replica: ReplicaID) throws(TandemCoreError) -> [Change] {
        var rng = SeededGenerator(seed: options.seed &+ 0x1000 &+ UInt64(index) &* 0x9E37_79B9)
        var writer = ChangeWriter(replica: replica)
        let enrolled = patients[index].enrolledMillis
        var changes: [Change] = []
        // Consents come with enrollment.
        if options.everyDay || rng.chance(0.85) {
            let edit = ConsentEdit.grant(patient: member, recipient: .center, scope: .aggregate, expiresMillis: nil, purpose: "program statistics")
            changes += try writer.write(edit, to: .random(using: &rng), current: nil, wallMillis: enrolled + 60_000)
        }
        if rng.chance(0.75) {
            let scope: ConsentScope = rng.chance(0.8) ? .metrics : .journal
            let edit = ConsentEdit.grant(patient: member, recipient: mentor, scope: scope, expiresMillis: nil, purpose: "peer support")
            changes += try writer.write(edit, to: .random(using: &rng), current: nil, wallMillis: enrolled + 120_000)
        }
        // Some leave in the first two weeks; the others stay a while, many to the end.
        let stay = options.everyDay ? options.days + 1
            : rng.chance(0.2) ? Int.random(in: 2...14, using: &rng) : Int.random(in: 20...max(21, options.days), using: &rng)
        let rate = options.everyDay ? 1 : Double.random(in: 0.6...0.95, using: &rng)
        let baseCraving = Double.random(in: 6.5...9.5, using: &rng)
        let baseMood = Double.random(in: 1.5...4, using: &rng)
        let susceptibility = Dictionary(uniqueKeysWithValues: Symptom.allCases.map { ($0, Double.random(in: 0.1...0.8, using: &rng)) })
        let firstDay = enrolled / Self.dayMillis
        for day in 0..<stay {
            let at = (firstDay + UInt64(day)) * Self.dayMillis + UInt64.random(in: 18...22, using: &rng) * 3_600_000
            guard at + 3_600_000 < options.endMillis else { break }
            guard day == 0 || rng.chance(rate) else { continue }
            let t = Double(day)
            func noise(_ spread: Double) -> Double { Double.random(in: -spread...spread, using: &rng) }
            var edit = JournalEdit()
            let date = try LocalDate(daysSince1970: Int(at / Self.dayMillis))
            let seconds = Int(at % Self.dayMillis / 1000)
            edit.at = try LocalDateTime(date: date, hour: seconds / 3600, minute: seconds / 60 % 60, offsetMinutes: 0)
            edit.craving = Int(max(0, min(10, (baseCraving * power2(-t / 28) + 1.5 + noise(1.2)).rounded())))
            edit.mood = Int(max(0, min(10, (baseMood + 4 * (1 - power2(-t / 21)) + noise(1.2)).rounded())))
            edit.hoursSlept = max(0, min(24, ((4 + 3 * (1 - power2(-t / 14)) + noise(1.0)) * 4).rounded() / 4))
            for (symptom, chance) in susceptibility where rng.chance(chance * power2(-t / 5)) { edit.addSymptoms.insert(symptom) }
            if rng.chance(0.5) { edit.text = Phrases.journal(using: &rng) }
            if rng.chance(0.2) { edit.addTags = [rng.pick(Phrases.tags)] }
            changes += try writer.write(try edit.recordEdit(), to: .random(using: &rng), current: nil, wallMillis: at)
        }
        return changes
    }

    /// A mentor's notes about their patients (given with their member ids), about one a week
    /// each while the patient journals; some shared with the patient.
    public func mentorChanges(_ index: Int, replica: ReplicaID, patients members: [(index: Int, member: MemberID)]) throws(TandemCoreError) -> [Change] {
        var rng = SeededGenerator(seed: options.seed &+ 0x2000_0000 &+ UInt64(index) &* 0x9E37_79B9)
        var writer = ChangeWriter(replica: replica)
        var notes: [(at: UInt64, edit: RecordEdit)] = []
        for (patient, member) in members {
            let first = patients[patient].enrolledMillis / Self.dayMillis
            var day = first + UInt64.random(in: 0...3, using: &rng)
            while (day + 1) * Self.dayMillis < options.endMillis, day < first + UInt64(options.days) {
                var edit = NoteEdit()
                edit.patient = member
                edit.date = try LocalDate(daysSince1970: Int(day))
                edit.text = Phrases.note(using: &rng)
                if rng.chance(0.4) { edit.addFollowUps = [rng.pick(Phrases.followUps)] }
                edit.shared = rng.chance(0.3)
                notes.append((day * Self.dayMillis + 15 * 3_600_000, try edit.recordEdit()))
                day += UInt64.random(in: 4...10, using: &rng)
            }
        }
        var changes: [Change] = []
        for note in notes.sorted(by: { $0.at < $1.at }) {
            changes += try writer.write(note.edit, to: .random(using: &rng), current: nil, wallMillis: note.at)
        }
        return changes
    }
}

/// 2 to the power `x`, without Foundation.
func power2(_ x: Double) -> Double {
    // power2(x) = e^(x ln 2): a short series on the fraction, squaring for the integer part.
    let whole = x.rounded(.down)
    let fraction = (x - whole) * 0.693_147_180_559_945_3
    var term = 1.0, sum = 1.0
    for n in 1...20 {
        term *= fraction / Double(n)
        sum += term
    }
    var result = sum
    var power = Int(whole)
    var base = 2.0
    if power < 0 {
        base = 0.5
        power = -power
    }
    while power > 0 {
        if power & 1 == 1 { result *= base }
        base *= base
        power >>= 1
    }
    return result
}
