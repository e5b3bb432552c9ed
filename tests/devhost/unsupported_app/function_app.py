"""An app with a binding devhost does not host: devhost must refuse to start, naming it."""
import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="work", connection="AzureWebJobsStorage")
def on_work(msg: func.QueueMessage) -> None:
    pass
