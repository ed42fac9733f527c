import ArgumentParser
import Foundation
import TandemCore
public import TandemServer
import TandemStore
public import TandemWorkload

extension AdminCommand {
    /// Fills a new center with a synthetic programme (`DemoCenter`), so that a newcomer sees
    /// the dashboard and `tandem report` with something in them. Refuses a center that has
    /// anyone but its staff: demo patients never mix with real ones.
    struct SeedDemo: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "seed-demo",
            abstract: "Fill a new center with synthetic patients, mentors, supervisors, journals, notes and consents (a demo; nothing real).")

        @Option(help: ArgumentHelp("Synthetic patients (1 to 5000).", valueName: "n"))
        var patients = 200

        @Option(help: ArgumentHelp("Days the programme has run, ending now (7 to 730).", valueName: "days"))
        var days = 90

        @Option(help: ArgumentHelp("The seed: the same seed gives the same center.", valueName: "n"))
        var seed: UInt64 = 1

        @OptionGroup var store: StoreOption

        func run() async throws {
            guard (1...5_000).contains(patients) else { throw CLIError.invalidChoice("--patients must be from 1 to 5000.") }
            guard (7...730).contains(days) else { throw CLIError.invalidChoice("--days must be from 7 to 730.") }
            let storage = try store.location.open()
            let others = try await storage.members().filter { $0.role != .staff }
            guard others.isEmpty else {
                throw CLIError.invalidChoice("seed-demo fills a new center only; this one has \(others.count) patients, mentors or supervisors.")
            }
            let now = SystemWallClock().nowMillis()
            let demo = DemoCenter(.init(patients: patients, days: days, seed: seed, endMillis: now))
            let changes = try await DemoSeeder(storage: storage, nowMillis: now).seed(demo)
            try await logAction(storage, "seed-demo", "\(patients) synthetic patients over \(days) days, seed \(seed)")
            print("""
                Seeded a demo center: \(patients) patients, \(demo.mentors.count) mentors, \(demo.supervisors.count) supervisors, \
                \(changes) changes over \(days) days (seed \(seed)). Every name and entry is synthetic.
                See it: tandem serve, then tandem report on a staff member's device, or the dashboard at /dashboard \
                (sign in with a code from tandem admin sign-in-code --staff NAME).
                """)
        }
    }
}

/// Enrolls demo people and pushes their changes straight into the store, as their devices
/// would through the sync API (each person gets one device whose token nobody holds).
/// `tandem admin seed-demo` and the dashboard's benchmark use it.
public struct DemoSeeder: Sendable {
    let storage: any CenterStore
    let nowMillis: UInt64

    public init(storage: any CenterStore, nowMillis: UInt64) {
        self.storage = storage
        self.nowMillis = nowMillis
    }

    /// Enrolls everyone of `demo`, assigns supervisors and mentors, and pushes every
    /// journal, consent and note; returns how many changes were pushed. `concurrency`
    /// patients are seeded at once (a PostgreSQL store takes pushes on several connections;
    /// the embedded one commits them one at a time either way).
    public func seed(_ demo: DemoCenter, concurrency: Int = 1) async throws -> Int {
        let supervisors = try await demo.supervisors.asyncMap { try await enroll($0) }
        let mentors = try await demo.mentors.asyncMap { try await enroll($0) }
        for (index, mentor) in mentors.enumerated() {
            _ = try await storage.assign(.supervisor, carer: supervisors[demo.supervisor(of: index)].member, member: mentor.member, nowMillis: nowMillis)
        }
        let mentorMembers = mentors.map(\.member)
        var seeded: [(index: Int, member: MemberID, changes: Int)] = []
        try await withThrowingTaskGroup(of: (index: Int, member: MemberID, changes: Int).self) { group in
            for (index, person) in demo.patients.enumerated() {
                if index >= max(1, concurrency), let done = try await group.next() { seeded.append(done) }
                group.addTask {
                    let patient = try await enroll(person)
                    let mentor = demo.mentor(of: index)
                    // From the day they enrolled, as a center assigns a mentor at intake: the
                    // caseloads' past weeks then count them (§9.19).
                    _ = try await storage.assign(.mentor, carer: mentorMembers[mentor], member: patient.member, nowMillis: person.enrolledMillis)
                    let written = try demo.patientChanges(
                        index, member: patient.member.id, mentor: mentorMembers[mentor].id, replica: patient.principal.replica ?? .random())
                    try await push(written, as: patient.principal)
                    return (index, patient.member.id, written.count)
                }
            }
            for try await done in group { seeded.append(done) }
        }
        var changes = seeded.reduce(0) { $0 + $1.changes }
        var mine: [[(index: Int, member: MemberID)]] = Array(repeating: [], count: mentors.count)
        for patient in seeded.sorted(by: { $0.index < $1.index }) { mine[demo.mentor(of: patient.index)].append((patient.index, patient.member)) }
        for (index, mentor) in mentors.enumerated() {
            let written = try demo.mentorChanges(index, replica: mentor.principal.replica ?? .random(), patients: mine[index])
            try await push(written, as: mentor.principal)
            changes += written.count
        }
        return changes
    }

    struct Enrolled {
        var member: Member
        var principal: Principal
    }

    func enroll(_ person: DemoCenter.Person) async throws -> Enrolled {
        let code = try await storage.invite(role: person.role, name: person.name, nowMillis: person.enrolledMillis)
        let token = Secrets.newToken()
        _ = try await storage.enroll(
            codeHash: Secrets.hashCode(code), replica: .random(), deviceName: "demo device", tokenHash: Secrets.hash(token), expectedRole: nil,
            expectedMember: nil, nowMillis: person.enrolledMillis)
        let principal = try await storage.authenticate(tokenHash: Secrets.hash(token))
        return Enrolled(member: Member(id: principal.member, name: person.name, role: person.role), principal: principal)
    }

    func push(_ changes: [Change], as principal: Principal) async throws {
        var start = 0
        while start < changes.count {
            let batch = Array(changes[start..<min(start + 1_000, changes.count)])
            _ = try await storage.push(batch, from: principal, repush: false, nowMillis: nowMillis, maxSkewMillis: 60_000)
            start += batch.count
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
