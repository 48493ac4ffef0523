from services.control.app import start
from services.shared.config import ControlSettings
from services.shared.service_runtime import main

main("control", start, ControlSettings)
