import Foundation
import TandemProcess

/// Peak resident memory of this process image so far, in bytes (`VmHWM`: unlike
/// `ru_maxrss`, it starts afresh at exec, so a child does not inherit its parent's peak).
func peakRSSBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
          let kilobytes = Int(line.split(separator: " ").dropFirst().first ?? "")
    else { return 0 }
    return kilobytes * 1024
}

/// Seconds of CPU this process used (user + system).
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

func now() -> Double { Date().timeIntervalSince1970 }

func fileBytes(_ path: String) -> Int {
    ["", "-wal", "-shm"].reduce(0) { total, suffix in
        total + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int) ?? 0)
    }
}

/// Runs this executable again with `arguments` and returns its standard output.
func runSelf(_ arguments: [String]) throws -> String {
    var executable = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.path
    if !FileManager.default.isExecutableFile(atPath: executable) {
        executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
    }
    let process = try Subprocess(executable, arguments, input: .inherit, output: .pipe)
    let data = process.standardOutput!.readDataToEndOfFile()
    guard process.waitUntilExit() == .exited(0) else { throw BenchError.childFailed(arguments.joined(separator: " ")) }
    return String(decoding: data, as: UTF8.self)
}

/// What a benchmark found that makes its figures untrue: a write never seen, a push refused
/// or timed out, a load not offered on schedule. Thrown after the report is printed, so
/// the run exits non-zero and says why.
struct BenchmarkFailure: Error, CustomStringConvertible {
    var reasons: [String]
    var description: String { "benchmark FAILED: " + reasons.joined(separator: "; ") }
}

enum BenchError: Error, CustomStringConvertible {
    case childFailed(String)
    case badInput(String)
    var description: String {
        switch self {
        case .childFailed(let what): "benchmark phase failed: \(what)"
        case .badInput(let what): "bad benchmark input: \(what)"
        }
    }
}

func format(_ value: Double, _ digits: Int = 2) -> String { String(format: "%.\(digits)f", value) }
