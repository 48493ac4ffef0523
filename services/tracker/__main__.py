from services.shared.config import TrackerSettings
from services.shared.service_runtime import main
from services.tracker.app import start

main("tracker", start, TrackerSettings)
