"""`python -m services.renderer` starts one renderer replica."""

from services.renderer.service import Renderer
from shared.runtime.bus import run_service

if __name__ == "__main__":
    run_service(Renderer)
