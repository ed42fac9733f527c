import ArgumentParser
import Foundation
import TandemClient
import TandemCore
import TandemProtocol
import TandemStore

/// The center's de-identified outcomes, for staff (PROTOCOL.md §9.19).
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Show the center's de-identified outcomes: craving, mood, journaling, mentor contact, withdrawal and retention.",
        discussion: """
            Counted only over patients who consent to be counted (tandem consent grant --to center --scope aggregate), \
            by whole weeks. No cell describes fewer patients than the server's minimum (11 or more), and patient \
            counts are rounded to 5.
            """)

    @Option(help: ArgumentHelp("The first day (snapped to its Monday), like 2026-09-01; default: 12 weeks back.", valueName: "date"))
    var from: String?

    @Option(help: ArgumentHelp("The last day (snapped to its Sunday); default: the last week that has ended.", valueName: "date"))
    var to: String?

    @Option(help: ArgumentHelp("Only the patients who enrolled that month, like 2026-09.", valueName: "month"))
    var cohort: String?

    @Option(help: ArgumentHelp("Only the patients in a mentor's caseload (by name or member id), as it stood at each week's end.", valueName: "mentor"))
    var caseload: String?

    @Flag(help: "Print JSON (docs/cli.md).")
    var json = false

    @Flag(help: "Print CSV: one line per figure.")
    var csv = false

    @Flag(help: "Allow plain HTTP to a non-loopback server (a trusted network only).")
    var allowInsecure = false

    @OptionGroup var home: HomeOptions

    func validate() throws {
        if json && csv { throw ValidationError("Give --json or --csv, not both.") }
        if let cohort, (try? LocalDate(parsing: cohort + "-01")) == nil || cohort.count != 7 {
            throw ValidationError("--cohort is a month like 2026-09.")
        }
        if cohort != nil && caseload != nil { throw ValidationError("Give --cohort or --caseload, not both.") }
    }

    func run() async throws {
        let store = try home.resolved.openStore()
        guard store.identity.role == .staff else {
            throw CLIError.invalidChoice("Only a staff member's device reads the center's statistics; this one is a \(store.identity.role.rawValue)'s.")
        }
        let from = try from.map { try DateInput.date($0).description }
        let to = try to.map { try DateInput.date($0).description }
        let report = try await Syncer(store: store, allowInsecure: allowInsecure).outcomes(from: from, to: to, cohort: cohort, caseload: caseload)
        if json { return try printJSON(report) }
        if csv { return print(OutcomeRendering.csv(report), terminator: "") }
        print(OutcomeRendering.text(report, style: .current, sparklines: Style.current.enabled))
    }
}

/// How a report reads: text tables (with sparklines on a terminal) and CSV. Golden files
/// in `Tests/TandemCLITests/Snapshots/report-*`.
enum OutcomeRendering {
    static func text(_ report: OutcomeReport, style: Style, sparklines: Bool) -> String {
        let minimum = report.minimumCell
        var lines = [
            style.bold("The center's outcomes, weeks \(report.from) to \(report.to): \(population(report)).")
        ]
        lines.append("De-identified: counted only for patients who consent; * marks a figure that would describe fewer than \(minimum) patients")
        lines.append("(or could be worked out from others that would), so it is not shown. Patient counts (~) are rounded to \(report.countsRoundedTo).")
        lines.append("")
        if report.weeks.isEmpty {
            lines.append("No week of the range has ended yet.")
        } else {
            lines.append(table(
                ["WEEK OF", "CRAVING mean/median", "MOOD mean/median", "JOURNALED", "NOTES PER PATIENT"],
                report.weeks.map { week in
                    [week.week, meanMedian(week.craving), meanMedian(week.mood), share(week.adherence), perPatient(week.contact)]
                }, style: style))
            if sparklines {
                lines.append("")
                lines.append("craving    " + spark(report.weeks.map { $0.craving.mean }, over: 0...10))
                lines.append("mood       " + spark(report.weeks.map { $0.mood.mean }, over: 0...10))
                lines.append("journaled  " + spark(report.weeks.map { $0.adherence.share }, over: 0...1))
            }
        }
        lines.append("")
        guard report.caseload == nil else {
            lines.append("By week since enrollment: for cohorts and the whole center only (a caseload splits cohorts, which these figures count whole).")
            return lines.joined(separator: "\n")
        }
        let weeks = report.sinceEnrollment
        lines.append(style.bold("By week since enrollment") + " (week 0 is the week a patient enrolled; every consenting patient, whatever the range):")
        lines.append(table(
            [""] + weeks.map { "W\($0.week)" },
            [["still journaling"] + weeks.map { shareOnly($0.retention) }]
                + Symptom.allCases.map { symptom in
                    [symptom.rawValue] + weeks.map { week in shareOnly(week.withdrawal.first { $0.symptom == symptom.rawValue }?.cell) }
                }, style: style))
        lines.append("Withdrawal rows: the share of patients journaling that week who reported the symptom.")
        return lines.joined(separator: "\n")
    }

    /// Whom the report counts, in words.
    static func population(_ report: OutcomeReport) -> String {
        if let cohort = report.cohort { return "patients who enrolled in \(cohort)" }
        if let caseload = report.caseload { return "patients in \(terminalSafe(caseload))'s caseload at each week's end who consent to be counted" }
        return "all patients who consent to be counted"
    }

    /// One line per figure; every line names the population it counts (the cohort, or the
    /// caseload's mentor; both empty for the whole center), so lines of several reports
    /// pasted together stay apart.
    static func csv(_ report: OutcomeReport) -> String {
        var rows = ["table,week,measure,patients,mean,median,share,per_patient,suppressed,cohort,caseload"]
        let population = [report.cohort ?? "", report.caseload ?? ""].map(AdminCommand.Audit.csvField)
        func row(_ table: String, _ week: String, _ measure: String, _ cell: OutcomeCell) {
            let fields = [
                table, week, measure, cell.patients.map(String.init) ?? "", cell.mean.map(number) ?? "", cell.median.map(number) ?? "",
                cell.share.map(number) ?? "", cell.perPatient.map(number) ?? "", cell.suppressed ? "true" : "false",
            ] + population
            rows.append(fields.joined(separator: ","))
        }
        for week in report.weeks {
            row("weekly", week.week, "craving", week.craving)
            row("weekly", week.week, "mood", week.mood)
            row("weekly", week.week, "adherence", week.adherence)
            row("weekly", week.week, "contact", week.contact)
        }
        for week in report.sinceEnrollment {
            row("since-enrollment", String(week.week), "retention", week.retention)
            for symptom in week.withdrawal { row("since-enrollment", String(week.week), symptom.symptom, symptom.cell) }
        }
        return rows.joined(separator: "\n") + "\n"
    }

    static func number(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(format: "%g", value)
    }

    static func count(_ cell: OutcomeCell) -> String { cell.patients.map { " (~\($0))" } ?? "" }

    static func meanMedian(_ cell: OutcomeCell) -> String {
        if cell.suppressed { return "*" }
        guard let mean = cell.mean, let median = cell.median else { return "-" }
        return String(format: "%.1f / %.1f", mean, median) + count(cell)
    }

    static func share(_ cell: OutcomeCell) -> String {
        if cell.suppressed { return "*" }
        guard let share = cell.share else { return "-" }
        return "\(Int((share * 100).rounded()))%" + count(cell)
    }

    static func shareOnly(_ cell: OutcomeCell?) -> String {
        guard let cell else { return "" }
        if cell.suppressed { return "*" }
        return cell.share.map { "\(Int(($0 * 100).rounded()))%" } ?? "-"
    }

    static func perPatient(_ cell: OutcomeCell) -> String {
        if cell.suppressed { return "*" }
        guard let value = cell.perPatient else { return "-" }
        return String(format: "%.2f", value) + count(cell)
    }

    /// One block character per value, scaled over `range`; a gap where none is shown.
    static func spark(_ values: [Double?], over range: ClosedRange<Double>) -> String {
        let blocks = Array("▁▂▃▄▅▆▇█")
        return String(values.map { value -> Character in
            guard let value else { return " " }
            let position = (value - range.lowerBound) / (range.upperBound - range.lowerBound)
            return blocks[max(0, min(blocks.count - 1, Int((position * Double(blocks.count - 1)).rounded())))]
        })
    }
}
