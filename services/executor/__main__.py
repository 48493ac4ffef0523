from services.executor.app import start
from services.shared.config import ExecutorSettings
from services.shared.service_runtime import main

main("executor", start, ExecutorSettings)
