// LocalStack starts DynamoDB Local with `-javaagent:<its dir>/ddb-local-loader-0.1.jar`, an agent it
// downloads from GitHub to lift DynamoDB Local's limit of 20 global secondary indexes. We install
// DynamoDB Local from the npm registry instead and need no such patch (our tables have no GSIs),
// so scripts/with-localstack.sh compiles this agent, which does nothing, into that jar: the JVM
// only needs a class with a `premain` method named by the jar's `Premain-Class`.
public final class NoopAgent {
    private NoopAgent() {}

    public static void premain(String arguments, java.lang.instrument.Instrumentation instrumentation) {}
}
