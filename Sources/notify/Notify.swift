import ArgumentParser
import NIOCore
import NIOPosix
import NotifyCore

#if canImport(Glibc)
    import Glibc
#endif

/// The one `notify` binary: every part of the platform is a subcommand.
@main
struct Notify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "notify",
        abstract: "Notification and push delivery platform for chat products.",
        subcommands: [
            DevCommand.self, APICommand.self, WorkerCommand.self, PlexerCommand.self, QueueCommand.self,
            KeysCommand.self, BenchCommand.self,
        ]
    )

    static func main() async {
        // A parent may hand us a signal mask with SIGTERM/SIGINT blocked (test runners, some supervisors); then a
        // graceful shutdown could never start. Unblock them before anything else.
        var signals = sigset_t()
        sigemptyset(&signals)
        for signal in [SIGTERM, SIGINT, SIGHUP] { sigaddset(&signals, signal) }
        pthread_sigmask(SIG_UNBLOCK, &signals, nil)
        // Run Swift concurrency on NIO's event loops: a task awaiting a Redis reply then resumes on the thread that
        // read it instead of hopping to another thread pool (two thread wake-ups less per round trip). It must be
        // installed before any other task starts.
        // Tasks then stay on the loop that enqueued them: queue jobs take the loops in turn instead.
        EventLoopTaskExecutors.isEnabled =
            NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        // `main(nil)` is ArgumentParser's async entry point.
        await Self.main(nil)
    }
}
