"""The parameter-efficiency study: sweep configs, the resumable runner (process pool or Ray) and the report.

    sgmmq bench studies/smoke.yml --out /tmp/smoke      # sgmmq.study.runner
    sgmmq report /tmp/smoke                             # sgmmq.study.report -> /tmp/smoke/README.md
"""
